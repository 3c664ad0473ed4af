"""Registry commands: pull, push, login, logout — docker's flags, output and
exit codes (docker/cli cli/command/image/{pull,push}.go, cli/command/registry/).

Credentials live where the docker CLI keeps them, so either client can use
what the other stored: `auths` in $DOCKER_CONFIG/config.json (else
~/.docker/config.json), each entry `{"auth": base64("user:password")}`
(plus `identitytoken` when the registry gave one), filed under the
registry's host (Docker Hub: `https://index.docker.io/v1/`). When the file
names a credential helper (`credHelpers` per registry, else `credsStore`),
the secrets go to `docker-credential-<name>` instead, spoken to as the
docker CLI does: the verb as argument, the server URL or a JSON document
on stdin, JSON on stdout.

Every pull and push sends the registry's credentials (or `{}`) in the
X-Registry-Auth header, base64url-encoded JSON, as the docker CLI does. When
the daemon answers that request with 401, the user is asked for a username
and password ("Login prior to pull:") and the request is sent once more with
them, as docker's ImagePull and ImagePush do with the CLI's
RegistryAuthenticationPrivilegedFunc; what is typed is not stored.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess

from dockyard.cli.command import PROG, Cli, Parser, StatusError, stream_is_terminal
from dockyard.cli.prompt import INDEX_SERVER, print_note, prompt_for_credentials

DEFAULT_NAMESPACE = "docker.io"
TOKEN_USERNAME = "<token>"  # a helper's "username" for an identity token
NOT_FOUND = "credentials not found in native keychain"


# --- the config file and its credential stores -----------------------------------


def config_path() -> str:
    directory = os.environ.get("DOCKER_CONFIG") or os.path.join(os.path.expanduser("~"),
                                                                 ".docker")
    return os.path.join(directory, "config.json")


def load_config() -> dict:
    try:
        with open(config_path(), "rb") as f:
            config = json.load(f)
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as e:
        raise StatusError(f"loading config file: {config_path()}: {e}") from None
    return config if isinstance(config, dict) else {}


def save_config(config: dict) -> None:
    """Rewrite the file whole, through a temp file: it holds secrets (0600)
    and other programs read it."""
    path = config_path()
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    tmp = f"{path}.tmp-{os.getpid()}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(config, f, indent="\t")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def convert_to_hostname(address: str) -> str:
    """credentials.ConvertToHostname: the host of a URL-ish server address."""
    for scheme in ("http://", "https://"):
        if address.startswith(scheme):
            address = address[len(scheme):]
            break
    return address.split("/", 1)[0]


def _helper(config: dict, server: str) -> str:
    helpers = config.get("credHelpers") or {}
    return helpers.get(convert_to_hostname(server)) or helpers.get(server) or \
        config.get("credsStore") or ""


_VERB_ING = {"get": "getting", "store": "storing", "erase": "erasing"}


class NotStored(Exception):
    """The helper has no credentials for that server."""


def _run_helper(name: str, verb: str, stdin: str) -> str:
    """One call of `docker-credential-<name> <verb>` (docker-credential-helpers' protocol)."""
    program = f"docker-credential-{name}"
    try:
        result = subprocess.run([program, verb], input=stdin, capture_output=True, text=True)
    except FileNotFoundError:
        raise StatusError(f'error {_VERB_ING[verb]} credentials - err: exec: "{program}": '
                          'executable file not found in $PATH, out: ``') from None
    if result.returncode != 0:
        out = (result.stdout or result.stderr).strip()
        if out == NOT_FOUND:
            raise NotStored(stdin)
        raise StatusError(f"error {_VERB_ING[verb]} credentials - err: exit status "
                          f"{result.returncode}, out: `{out}`")
    return result.stdout


def get_credentials(config: dict, server: str) -> dict:
    """The stored AuthConfig of `server` ({} if none), in the API's field names."""
    helper = _helper(config, server)
    if helper:
        try:
            doc = json.loads(_run_helper(helper, "get", server) or "{}")
        except NotStored:
            return {}
        creds = {"serveraddress": server}
        if doc.get("Username") == TOKEN_USERNAME:
            creds["identitytoken"] = doc.get("Secret", "")
        else:
            creds.update(username=doc.get("Username", ""), password=doc.get("Secret", ""))
        return creds
    auths = config.get("auths") or {}
    entry = auths.get(server)
    if entry is None:  # a legacy key such as "https://host/v1/"
        entry = next((v for k, v in auths.items() if convert_to_hostname(k) == server), None)
    if not isinstance(entry, dict):
        return {}
    creds = {"serveraddress": server}
    if entry.get("auth"):
        raw = base64.b64decode(entry["auth"] + "=" * (-len(entry["auth"]) % 4)).decode()
        user, _, password = raw.partition(":")
        creds.update(username=user, password=password)
    for key in ("identitytoken", "registrytoken", "email"):
        if entry.get(key):
            creds[key] = entry[key]
    return creds


def store_credentials(config: dict, creds: dict) -> bool:
    """Into the server's credential helper, or else the file itself; True
    when a password was written into the file (docker then warns)."""
    server = creds["serveraddress"]
    helper = _helper(config, server)
    if helper:
        secret = creds.get("identitytoken") or creds.get("password", "")
        user = TOKEN_USERNAME if creds.get("identitytoken") else creds.get("username", "")
        _run_helper(helper, "store", json.dumps({"ServerURL": server, "Username": user,
                                                 "Secret": secret}))
        entry: dict = {}
    else:
        entry = {}
        if creds.get("username") or creds.get("password"):
            pair = f"{creds.get('username', '')}:{creds.get('password', '')}"
            entry["auth"] = base64.b64encode(pair.encode()).decode()
        if creds.get("identitytoken"):
            entry["identitytoken"] = creds["identitytoken"]
        if (config.get("auths") or {}).get(server) == entry:
            return False  # the same again: the file is left as it is (docker's fileStore)
    config.setdefault("auths", {})[server] = entry
    save_config(config)
    return not helper and bool(creds.get("password"))


def erase_credentials(config: dict, servers: list[str]) -> None:
    auths = config.get("auths") or {}
    for server in servers:
        helper = _helper(config, server)
        if helper:
            try:
                _run_helper(helper, "erase", server)
            except (NotStored, StatusError):
                pass
        auths.pop(server, None)
    save_config(config)


def auth_config_key(domain: str) -> str:
    """getAuthConfigKey: where a registry's credentials are filed."""
    return INDEX_SERVER if domain in ("docker.io", "index.docker.io") else domain


def encode_auth(creds: dict) -> str:
    """X-Registry-Auth's value: the non-empty fields, as base64url JSON."""
    creds = {k: v for k, v in creds.items() if v}
    return base64.urlsafe_b64encode(json.dumps(creds).encode()).decode()


def registry_auth(domain: str) -> str:
    """X-Registry-Auth for a registry: its stored credentials, or `{}`."""
    return encode_auth(get_credentials(load_config(), auth_config_key(domain)))


# --- pull and push ----------------------------------------------------------------


def _parse(name: str):
    from dockyard.image import reference
    try:
        return reference.parse_normalized(name)
    except reference.ReferenceError as e:
        raise StatusError(str(e)) from None


def _display(cli: Cli, response, quiet: bool) -> None:
    """The progress stream, as the docker CLI shows it; with -q only its error."""
    from dockyard.cli import jsonstream
    messages = jsonstream.iter_messages(response)
    if quiet:
        for msg in messages:
            if msg.get("errorDetail") or msg.get("error"):
                raise StatusError((msg.get("errorDetail") or {}).get("message")
                                  or msg.get("error") or "", 1)
        return
    jsonstream.display(messages, cli.out, stream_is_terminal(cli.out))


def _request_with_login(cli: Cli, command: str, domain: str, send):
    """`send(x_registry_auth)` with the stored credentials; if the daemon
    answers 401, once more with credentials the user types (docker's
    ImagePull/ImagePush and their PrivilegeFunc). Any other answer, and the
    second one whatever it is, stands."""
    from dockyard.client.api import APIError
    try:
        return send(registry_auth(domain))
    except APIError as e:
        if e.status != 401:
            raise
    return send(login_prior_to(cli, command, domain))


def _reference(cli: Cli, opts):
    """The NAME argument of pull and push, with docker's default tag."""
    ref = _parse(opts.args[0])
    if opts.all_tags and (ref.tag or ref.digest):
        raise StatusError("tag can't be used with --all-tags/-a")
    if not opts.all_tags and not ref.tag and not ref.digest:
        ref = ref.tagged_or_latest()
        if not opts.quiet:
            cli.out.write("Using default tag: latest\n")
    return ref


def pull(cli: Cli, argv: list[str], path: str) -> int:
    p = Parser(path, "[OPTIONS] NAME[:TAG|@DIGEST]", "Download an image from a registry",
               aliases=f"{PROG} image pull, {PROG} pull", args=(1, 1))
    p.flag("-a", "--all-tags", help="Download all tagged images in the repository")
    p.flag("--disable-content-trust", default=True, help="Skip image verification", hidden=True)
    p.option("--platform", help="Set platform if server is multi-platform capable",
             default=os.environ.get("DOCKER_DEFAULT_PLATFORM", ""))
    p.flag("-q", "--quiet", help="Suppress verbose output")
    opts = p.parse(argv)
    ref = _reference(cli, opts)
    query = {"fromImage": ref.familiar_name}
    if not opts.all_tags:
        query["tag"] = ref.digest or ref.tag
    if opts.platform:
        query["platform"] = opts.platform.lower()
    response = _request_with_login(cli, "pull", ref.domain, lambda auth: cli.client.request(
        "POST", "/images/create", query=query, headers={"X-Registry-Auth": auth}))
    _display(cli, response, opts.quiet)
    cli.out.write(f"{ref}\n")
    return 0


def push(cli: Cli, argv: list[str], path: str) -> int:
    p = Parser(path, "[OPTIONS] NAME[:TAG]", "Upload an image to a registry",
               aliases=f"{PROG} image push, {PROG} push", args=(1, 1))
    p.flag("-a", "--all-tags", help="Push all tags of an image to the repository")
    p.flag("--disable-content-trust", default=True, help="Skip image signing", hidden=True)
    p.flag("-q", "--quiet", help="Suppress verbose output")
    opts = p.parse(argv)
    ref = _reference(cli, opts)
    if ref.digest:
        raise StatusError("cannot push a digest reference")
    query = {"tag": ref.tag} if ref.tag else None
    response = _request_with_login(cli, "push", ref.domain, lambda auth: cli.client.request(
        "POST", f"/images/{ref.familiar_name}/push", query=query,
        headers={"X-Registry-Auth": auth}))
    _display(cli, response, opts.quiet)
    if opts.quiet:
        cli.out.write(f"{ref}\n")
    return 0


# --- asking the user for credentials ------------------------------------------------

def login_prior_to(cli: Cli, command: str, domain: str) -> str:
    """RegistryAuthenticationPrivilegedFunc: the X-Registry-Auth of a second
    attempt, from a username and password the user types. The stored
    username is offered as the default.

    docker 28 asks with Docker Hub's address whatever the registry, so the
    prompt shows Hub's sign-up hints and the header names Hub as its
    serveraddress; the daemon pulls and pushes from the image's registry
    all the same. We say and send what docker does."""
    cli.out.write(f"\nLogin prior to {command}:\n")
    try:
        stored = get_credentials(load_config(), auth_config_key(domain))
    except StatusError as e:
        cli.err.write(f"Unable to retrieve stored credentials for {INDEX_SERVER}, error: "
                      f"{e.message}.\n")
        stored = {}
    creds = prompt_for_credentials(cli, "", "", stored.get("username", ""), INDEX_SERVER)
    return encode_auth(creds)



# --- login and logout ---------------------------------------------------------------


def login(cli: Cli, argv: list[str], path: str) -> int:
    p = Parser(path, "[OPTIONS] [SERVER]", "Authenticate to a registry", args=(0, 1))
    p.option("-p", "--password", help="Password", default=None)
    p.flag("--password-stdin", help="Take the password from stdin")
    p.option("-u", "--username", help="Username", default=None)
    opts = p.parse(argv)
    user, password = opts.username, opts.password
    stdin = opts.password_stdin or password == "-"
    if stdin:
        if password not in (None, "-"):
            raise StatusError("conflicting options: cannot specify both --password and "
                              "--password-stdin")
        if user is None:
            raise StatusError("the --password-stdin option requires --username to be set")
    if user == "":
        raise StatusError("username is empty")
    if password == "":
        raise StatusError("password is empty")
    if password and password != "-":
        cli.err.write("WARNING! Using --password via the CLI is insecure. "
                      "Use --password-stdin.\n")
    if stdin:
        password = _read_secret(cli)
        if not password.strip():
            raise StatusError("password is empty")
    server = opts.args[0] if opts.args else ""
    if not server or server == DEFAULT_NAMESPACE:
        server = INDEX_SERVER
    if server != INDEX_SERVER:
        server = convert_to_hostname(server)
    config = load_config()
    stored: dict = {}
    if not user and not password:
        stored = get_credentials(config, server)
        if stored.get("username") and stored.get("password"):
            status = _login_stored(cli, config, stored)
            if status is not None:
                cli.out.write(f"{status}\n")
                return 0
    # no stored credentials, or the registry refused them: ask
    if (not user or not password) and not stream_is_terminal(cli.stdin):
        raise StatusError("Error: Cannot perform an interactive login from a non TTY device")
    creds = prompt_for_credentials(cli, user or "", password or "", stored.get("username", ""),
                                   server)
    answer = cli.client.post("/auth", body=creds)
    _store_answer(cli, config, creds, answer)
    cli.out.write(f"{answer.get('Status', '')}\n")
    return 0


def _login_stored(cli: Cli, config: dict, creds: dict) -> str | None:
    """loginWithStoredCredentials: the daemon's status for the stored
    credentials, or None when it refused them (which is said)."""
    from dockyard.client.api import APIError
    cli.err.write(f"Authenticating with existing credentials... [Username: {creds['username']}]"
                  "\n")
    print_note(cli.err, "To login with a different account, run 'docker logout' followed by "
                        "'docker login'")
    cli.err.write("\n\n")
    try:
        answer = cli.client.post("/auth", body=creds)
    except APIError as e:
        if e.status == 401:
            cli.err.write("Stored credentials invalid or expired\n")
        else:
            cli.err.write(f"Login did not succeed, error: Error response from daemon: "
                          f"{e.message}\n")
        return None
    _store_answer(cli, config, creds, answer)
    return answer.get("Status", "")


UNENCRYPTED_WARNING = """
WARNING! Your credentials are stored unencrypted in '{}'.
Configure a credential helper to remove this warning. See
https://docs.docker.com/go/credential-store/

"""


def _store_answer(cli: Cli, config: dict, creds: dict, answer: dict) -> None:
    creds = dict(creds)
    if answer.get("IdentityToken"):
        creds["password"] = ""
        creds["identitytoken"] = answer["IdentityToken"]
    try:
        in_the_clear = store_credentials(config, creds)
    except (OSError, StatusError) as e:
        raise StatusError(f"Error saving credentials: {e}") from None
    if in_the_clear:
        cli.err.write(UNENCRYPTED_WARNING.format(config_path()))


def _read_secret(cli: Cli) -> str:
    data = cli.stdin.read()
    if isinstance(data, bytes):
        data = data.decode()
    for eol in ("\r\n", "\n", "\r"):
        if data.endswith(eol):
            return data[:-len(eol)]
    return data


def logout(cli: Cli, argv: list[str], path: str) -> int:
    p = Parser(path, "[SERVER]", "Log out from a registry", args=(0, 1))
    opts = p.parse(argv)
    server = opts.args[0] if opts.args else ""
    if not server:
        servers, shown = [INDEX_SERVER], INDEX_SERVER
    else:
        shown = convert_to_hostname(server)
        servers = [server, shown, f"http://{shown}", f"https://{shown}"]
    cli.out.write(f"Removing login credentials for {shown}\n")
    erase_credentials(load_config(), list(dict.fromkeys(servers)))
    return 0
