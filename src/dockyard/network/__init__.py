"""Container networking: IPAM, the bridge driver's steps, packet-filter rules, DNS,
port publishing. It configures the kernel (netlink, namespaces, sysctls, iptables)
only through dockyard.linux, and imports nothing from daemon/ or api/."""
