//! vmlat's lab: builds VRRP labs (network namespaces on a bridge running real
//! keepalived), and tears down everything it built.
