"""The userland proxy: one process serves every published port of one
container, as dockerd's docker-proxy does for one port.

    python -m dockyard.network.proxy --container-id ID [--pidfile PATH]
        [--ready-fd N] [--udp-timeout SECONDS]
        --binding PROTO,FD,CONTAINER_IP,CONTAINER_PORT ...

(dockyard.network.proxies starts it in a quicker way, and finds it again by
its command line). Why a process at all: the DNAT rules that publish a port
catch packets that enter the host from outside; a connection from the host
itself to 127.0.0.1:8080 never crosses them, so something on the host must
accept it and connect to the container.

The daemon binds and listens on every host socket before it starts us, and we
inherit them (fd FD of each --binding): a port in use is the daemon's error at
start time, the port is held from then on, and connections that arrive before
we serve wait in the listen backlog (datagrams in the receive queue).

TCP: each accepted connection gets a connection to the container and two
threads (kept for later connections when it ends), one per direction, that
move the bytes with splice(2) through a pipe: socket to pipe, pipe to socket,
never through user space. When one side ends
its stream, the other side's is shut down for writing (the half-close
passes through, as with docker-proxy), and both sockets are closed once both
directions have ended.

UDP: per client address a socket connected to the container; its replies go
back from the listening socket. On a wildcard-bound socket, replies are sent
from the address the client wrote to (IP_PKTINFO), else the kernel might pick
another source address and the client would drop the reply. A client
address is forgotten after --udp-timeout (90 s, docker-proxy's
connection-tracking timeout) without traffic either way.

Process: our own session (the daemon may exit or restart while we keep
serving); SIGHUP and SIGPIPE ignored; SIGTERM and SIGINT (dockerd 20.10 stops
its proxies with SIGINT) keep their default action, which ends the process at
once: the kernel closes every socket, so there is nothing to clean up. With
--pidfile we write our PID there (crash-safe) before we report ready; with
--ready-fd we write "0\\n" there when serving, or "1\\n<error>" and exit 1, as
docker-proxy does on its fd 3.

Stdlib only, and only its C modules (_socket, not socket: that one imports
enum and selectors, ~10 ms): this starts per container.
"""

import fcntl
import os
import select
import sys
import time

import _signal
import _socket
import _thread

USAGE = """usage: proxy.py --container-id ID [--pidfile PATH] [--ready-fd N]
    [--udp-timeout SECONDS] --binding PROTO,FD,CONTAINER_IP,CONTAINER_PORT [--binding ...]

Serves the listening TCP or UDP socket inherited as FD of each binding,
forwarding to CONTAINER_IP:CONTAINER_PORT."""

UDP_TIMEOUT = 90.0        # docker-proxy's UDPConnTrackTimeout
UDP_SWEEP = 5.0           # how often idle UDP clients are looked for, at most
UDP_BUFSIZE = 65535       # one datagram, whatever its size
BATCH = 64                # accepts / datagrams per wake-up: fair to the other sockets
PIPE_SIZE = 1 << 20       # per direction; see _grow_pipe
THREAD_STACK = 256 * 1024  # relay threads are shallow; 8 MiB each would be waste

IP_PKTINFO = 8            # <linux/in.h>; the socket module of 3.11 lacks it
IPV6_RECVPKTINFO = 49
IPV6_PKTINFO = 50


class Binding:
    """One published port: the inherited listening socket and where its
    traffic goes."""

    def __init__(self, proto: str, fd: int, container_ip: str, container_port: int):
        self.proto, self.fd = proto, fd
        self.container = (container_ip, container_port)
        self.container_family = _socket.AF_INET6 if ":" in container_ip else _socket.AF_INET


def parse_args(argv: list) -> dict:
    opts = {"container_id": None, "pidfile": None, "ready_fd": None,
            "udp_timeout": UDP_TIMEOUT, "bindings": []}
    args = list(argv)
    while args:
        flag = args.pop(0)
        if flag in ("-h", "--help"):
            print(USAGE)
            sys.exit(0)
        flag, eq, value = flag.partition("=")
        if flag not in ("--container-id", "--pidfile", "--ready-fd", "--udp-timeout",
                        "--binding"):
            raise ValueError(f"unknown flag {flag!r}")
        if not eq:
            if not args:
                raise ValueError(f"flag {flag} needs a value")
            value = args.pop(0)
        if flag == "--binding":
            opts["bindings"].append(_parse_binding(value))
        elif flag == "--ready-fd":
            opts["ready_fd"] = int(value)
        elif flag == "--udp-timeout":
            opts["udp_timeout"] = float(value)
        else:
            opts[flag[2:].replace("-", "_")] = value
    if not opts["container_id"] or not opts["bindings"]:
        raise ValueError("--container-id and at least one --binding are required")
    return opts


def _parse_binding(value: str) -> Binding:
    try:
        proto, fd, ip, port = value.split(",")
        if proto not in ("tcp", "udp"):
            raise ValueError
        return Binding(proto, int(fd), ip, int(port))
    except ValueError:
        raise ValueError(f"bad --binding {value!r}: want tcp|udp,FD,CONTAINER_IP,CONTAINER_PORT") \
            from None


def log(message: str) -> None:
    """A line on stderr (the daemon's log file for us, or /dev/null), in Go's
    log format as docker-proxy writes it."""
    try:
        os.write(2, f"{time.strftime('%Y/%m/%d %H:%M:%S')} {message}\n".encode())
    except OSError:
        pass


# -- TCP ------------------------------------------------------------------------------

class Workers:
    """Threads kept for the next connections. Each connection needs two (one
    per direction), and starting two threads per connection made a short
    connection cost ~1 ms through us; handing the work to waiting threads
    brought that down by a third (bench/bench_ports.py's connection rate:
    ~1000/s to ~1400/s on a 2-CPU machine, docker-proxy ~1300/s). At most
    `keep` wait; the others end."""

    def __init__(self, keep: int):
        self.keep = keep
        self.idle: list = []            # [wake lock, job] of the waiting threads
        self.mutex = _thread.allocate_lock()

    def run(self, fn, *args) -> None:
        """fn(*args) in a thread; RuntimeError if none can be started."""
        with self.mutex:
            slot = self.idle.pop() if self.idle else None
        if slot is not None:
            slot[1] = (fn, args)
            slot[0].release()
            return
        slot = [_thread.allocate_lock(), (fn, args)]
        slot[0].acquire()
        _thread.start_new_thread(self._work, (slot,))

    def _work(self, slot: list) -> None:
        while True:
            fn, args = slot[1]
            slot[1] = None
            try:
                fn(*args)
            except Exception as e:  # noqa: BLE001 - one connection's bug must not end the thread
                log(f"internal error: {e!r}")
            with self.mutex:
                if len(self.idle) >= self.keep:
                    return
                self.idle.append(slot)
            slot[0].acquire()  # until run() hands over the next job


WORKERS = Workers(keep=32)


def tcp_connection(fd: int, family: int, binding: Binding) -> None:
    """Serve one accepted connection (in a worker thread, which relays the
    client's direction; a second one relays the container's) until both
    directions have ended."""
    client = _socket.socket(family, _socket.SOCK_STREAM, 0, fd)
    backend = _socket.socket(binding.container_family, _socket.SOCK_STREAM)
    try:
        # Go sets TCP_NODELAY on every TCP connection, so docker-proxy has it on
        # both sides: without it, a small write waits for the ACK of the last one
        # (Nagle), and a request/response over the proxy can stall 40 ms on a
        # delayed ACK.
        client.setsockopt(_socket.IPPROTO_TCP, _socket.TCP_NODELAY, 1)
        backend.setsockopt(_socket.IPPROTO_TCP, _socket.TCP_NODELAY, 1)
        backend.connect(binding.container)
    except OSError as e:
        # docker-proxy closes the client too: it sees its connection end.
        log(f"Can't forward traffic to backend tcp/{_addr(binding.container)}: {e.strerror or e}")
        client.close()
        backend.close()
        return
    other_done = _thread.allocate_lock()
    other_done.acquire()
    try:
        WORKERS.run(_relay_then_release, backend, client, other_done)
    except RuntimeError as e:  # can't start new thread
        log(f"Can't forward traffic to backend tcp/{_addr(binding.container)}: {e}")
        client.close()
        backend.close()
        return
    relay(client, backend)
    other_done.acquire()
    client.close()
    backend.close()


def _relay_then_release(src, dst, done) -> None:
    try:
        relay(src, dst)
    finally:
        done.release()


def relay(src, dst) -> None:
    """Move bytes from src to dst until src's stream ends or either fails,
    then pass the end on: dst is shut down for writing (its peer reads EOF),
    and src for reading, as docker-proxy's CloseRead/CloseWrite.

    splice(2) needs a pipe on one side, so the bytes go socket → pipe → socket
    as page references, without a copy through user space. The pipe is
    emptied before each read, so the first splice never blocks on it."""
    pipe_r, pipe_w = os.pipe2(os.O_CLOEXEC)
    try:
        size = _grow_pipe(pipe_w)
        sfd, dfd = src.fileno(), dst.fileno()
        splice = os.splice
        while True:
            n = splice(sfd, pipe_w, size)
            if not n:
                break
            while n:
                n -= splice(pipe_r, dfd, n)
    except OSError:
        pass  # a reset, or a write to a peer that went away: this direction is over
    finally:
        os.close(pipe_r)
        os.close(pipe_w)
    for sock, how in ((dst, _socket.SHUT_WR), (src, _socket.SHUT_RD)):
        try:
            sock.shutdown(how)
        except OSError:
            pass


def _grow_pipe(fd: int) -> int:
    """A bigger pipe moves more per splice pair: on loopback the proxy's CPU
    per GiB falls from ~1.0 s (the default 64 KiB) to ~0.7 s (256 KiB) and
    ~0.5 s (1 MiB, fs.pipe-max-size's default). It holds page references,
    not copies, and only while bytes are in flight. The kernel may refuse it
    (a lower pipe-max-size, or a user over pipe-user-pages-soft): then the
    pipe keeps its size."""
    try:
        return fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, PIPE_SIZE)
    except OSError:
        return fcntl.fcntl(fd, fcntl.F_GETPIPE_SZ)


class TCPService:
    def __init__(self, sock, binding: Binding):
        self.sock, self.binding = sock, binding

    def ready(self) -> None:
        """The listening socket is readable: accept what is queued, each
        connection to a worker thread."""
        for _ in range(BATCH):
            try:
                fd, _peer = self.sock._accept()
            except BlockingIOError:
                return
            except (InterruptedError, ConnectionAbortedError):
                continue  # a client that gave up while queued: take the next
            except OSError as e:
                # Out of descriptors or memory: the queue stays readable, so wait a
                # little instead of spinning on it; connections wait in the backlog.
                log(f"accept on tcp/{_addr(self.sock.getsockname())}: {e.strerror or e}")
                time.sleep(0.1)
                return
            try:
                WORKERS.run(tcp_connection, fd, self.sock.family, self.binding)
            except RuntimeError as e:
                log(f"Can't forward traffic to backend tcp/{_addr(self.binding.container)}: {e}")
                os.close(fd)


# -- UDP ------------------------------------------------------------------------------

class UDPFlow:
    """One client address: its socket connected to the container."""

    def __init__(self, sock, client, pktinfo):
        self.sock, self.client, self.pktinfo = sock, client, pktinfo
        self.last = time.monotonic()


class UDPService:
    def __init__(self, sock, binding: Binding, loop: "Loop"):
        self.sock, self.binding, self.loop = sock, binding, loop
        self.flows: dict = {}
        host = sock.getsockname()[0]
        self.wildcard = host in ("0.0.0.0", "::")
        if self.wildcard:
            if sock.family == _socket.AF_INET6:
                sock.setsockopt(_socket.IPPROTO_IPV6, IPV6_RECVPKTINFO, 1)
            else:
                sock.setsockopt(_socket.IPPROTO_IP, IP_PKTINFO, 1)

    def ready(self) -> None:
        """Datagrams from clients: each to the container over its client's flow."""
        for _ in range(BATCH):
            try:
                if self.wildcard:
                    data, ancdata, _flags, client = self.sock.recvmsg(UDP_BUFSIZE, 64)
                else:
                    data, client = self.sock.recvfrom(UDP_BUFSIZE)
                    ancdata = None
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                continue  # an error queued for the socket; the next datagram is fine
            flow = self.flows.get(client)
            if flow is None:
                flow = self._open(client, ancdata)
                if flow is None:
                    continue
            flow.last = time.monotonic()
            try:
                flow.sock.send(data)
            except OSError:
                pass  # full queue, or ICMP from a datagram before: UDP may drop

    def _open(self, client, ancdata):
        sock = _socket.socket(self.binding.container_family, _socket.SOCK_DGRAM)
        try:
            sock.setblocking(False)
            sock.connect(self.binding.container)
        except OSError as e:
            log(f"Can't proxy a datagram to udp/{_addr(self.binding.container)}: {e.strerror or e}")
            sock.close()
            return None
        flow = UDPFlow(sock, client, _reply_pktinfo(ancdata))
        self.flows[client] = flow
        self.loop.add(sock.fileno(), lambda: self.reply(flow))
        return flow

    def reply(self, flow: UDPFlow) -> None:
        """Datagrams from the container: back to the client, from the
        listening socket."""
        for _ in range(BATCH):
            try:
                data = flow.sock.recv(UDP_BUFSIZE)
            except (BlockingIOError, InterruptedError):
                return
            except ConnectionRefusedError:
                # ICMP port unreachable for an earlier datagram (nothing listens in
                # the container yet); docker-proxy ignores it too.
                continue
            except OSError:
                self.close(flow)
                return
            flow.last = time.monotonic()
            try:
                if flow.pktinfo:
                    self.sock.sendmsg([data], flow.pktinfo, 0, flow.client)
                else:
                    self.sock.sendto(data, flow.client)
            except OSError:
                pass

    def expire(self, now: float, timeout: float) -> None:
        for flow in [f for f in self.flows.values() if now - f.last > timeout]:
            self.close(flow)

    def close(self, flow: UDPFlow) -> None:
        if self.flows.get(flow.client) is flow:
            del self.flows[flow.client]
        self.loop.remove(flow.sock.fileno())
        flow.sock.close()


def _reply_pktinfo(ancdata) -> list:
    """The control message that makes a reply leave from the address the
    client's datagram was sent to: in_pktinfo{ifindex 0, spec_dst = that
    address}, or in6_pktinfo{that address, ifindex 0} (docker-proxy's
    ControlMessage{Src: ...})."""
    for level, kind, data in ancdata or ():
        if level == _socket.IPPROTO_IP and kind == IP_PKTINFO and len(data) >= 12:
            # struct in_pktinfo { int ifindex; in_addr spec_dst; in_addr addr; }:
            # addr is the header's destination.
            return [(level, kind, bytes(4) + data[8:12] + bytes(4))]
        if level == _socket.IPPROTO_IPV6 and kind == IPV6_PKTINFO and len(data) >= 20:
            # struct in6_pktinfo { in6_addr addr; unsigned int ifindex; }
            return [(level, kind, data[:16] + bytes(4))]
    return []


# -- the loop -------------------------------------------------------------------------

class Loop:
    """epoll over the listening sockets and the UDP flows; the TCP
    connections run in their own threads."""

    def __init__(self, udp_timeout: float = UDP_TIMEOUT):
        self.udp_timeout = udp_timeout
        self.sweep = min(UDP_SWEEP, udp_timeout / 2)
        self.epoll = select.epoll()
        self.handlers: dict = {}
        self.udp: list = []

    def add(self, fd: int, handler) -> None:
        self.handlers[fd] = handler
        self.epoll.register(fd, select.EPOLLIN)

    def remove(self, fd: int) -> None:
        if self.handlers.pop(fd, None) is not None:
            self.epoll.unregister(fd)

    def run(self) -> None:
        next_sweep = time.monotonic() + self.sweep
        while True:
            busy = any(s.flows for s in self.udp)
            timeout = max(0.0, next_sweep - time.monotonic()) if busy else -1
            for fd, _events in self.epoll.poll(timeout):
                handler = self.handlers.get(fd)
                if handler is not None:
                    handler()
            now = time.monotonic()
            if now >= next_sweep or not busy:
                for service in self.udp:
                    service.expire(now, self.udp_timeout)
                next_sweep = now + self.sweep


def serve(bindings: list, udp_timeout: float = UDP_TIMEOUT) -> Loop:
    """Take over the inherited sockets; return the loop, ready to run."""
    loop = Loop(udp_timeout)
    for b in bindings:
        sock = _socket.socket(fileno=b.fd)  # family and type from the socket itself
        expected = _socket.SOCK_STREAM if b.proto == "tcp" else _socket.SOCK_DGRAM
        if sock.type != expected:
            raise ValueError(f"fd {b.fd} is not a {b.proto} socket")
        sock.setblocking(False)
        if b.proto == "tcp":
            loop.add(sock.fileno(), TCPService(sock, b).ready)
        else:
            service = UDPService(sock, b, loop)
            loop.udp.append(service)
            loop.add(sock.fileno(), service.ready)
    return loop


# -- the process ----------------------------------------------------------------------

def write_pidfile(path: str) -> None:
    """Our PID, crash-safe (temp file, fsync, rename, fsync of the directory):
    the daemon finds us by it after a restart, and a torn file would hide us."""
    directory = os.path.dirname(path) or "."
    tmp = os.path.join(directory, f".tmp-proxy-{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
    try:
        os.write(fd, f"{os.getpid()}\n".encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    dfd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


def _detach() -> None:
    """Our own session, so that the daemon's terminal or process group never
    signals us (the daemon usually starts us so already: setsid fails then)."""
    try:
        os.setsid()
    except OSError:
        pass
    _signal.signal(_signal.SIGHUP, _signal.SIG_IGN)
    _signal.signal(_signal.SIGPIPE, _signal.SIG_IGN)  # EPIPE from a write instead
    _signal.signal(_signal.SIGINT, _signal.SIG_DFL)   # not KeyboardInterrupt: just end
    _signal.signal(_signal.SIGTERM, _signal.SIG_DFL)


def _raise_nofile() -> None:
    """Six descriptors per TCP connection (two sockets, two pipes): the soft
    limit of 1024 would cap us at ~170; Go programs raise it to the hard
    limit by themselves, so docker-proxy does too."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (OSError, ValueError):
            pass


def _addr(address) -> str:
    host, port = address[0], address[1]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _report(fd, message: str) -> None:
    if fd is None:
        return
    try:
        os.write(fd, message.encode())
    except OSError:
        pass  # the daemon did not wait for it
    finally:
        os.close(fd)


def main(argv=None) -> int:
    try:
        opts = parse_args(sys.argv[1:] if argv is None else argv)
    except ValueError as e:
        print(f"proxy: {e}\n{USAGE}", file=sys.stderr)
        return 2
    ready_fd = opts["ready_fd"]
    try:
        _detach()
        _raise_nofile()
        _thread.stack_size(THREAD_STACK)
        loop = serve(opts["bindings"], opts["udp_timeout"])
        if opts["pidfile"]:
            write_pidfile(opts["pidfile"])
    except (OSError, ValueError) as e:
        _report(ready_fd, f"1\n{e}")
        log(f"proxy for container {opts['container_id']}: {e}")
        return 1
    _report(ready_fd, "0\n")
    loop.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
