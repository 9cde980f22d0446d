{
  "targets": [
    {
      "target_name": "bpftune_native",
      "sources": [
        "native/addon.c",
        "native/libbpf_log.c",
        "native/bpf_object.c",
        "native/bpf_map.c",
        "native/ring_buffer.c",
        "native/netns_enter.c",
        "native/netns_sysctl.c",
        "native/system.c",
        "native/netns_net.c",
        "native/unix_datagram.c",
        "native/capabilities.c"
      ],
      "defines": ["NAPI_VERSION=8", "_GNU_SOURCE"],
      "cflags": [
        "-std=gnu11",
        "-Wall",
        "-Wextra",
        "-Wunused-parameter",
        "-Wshadow",
        "-Wformat=2",
        "-Wstrict-prototypes",
        "-Wmissing-prototypes"
      ],
      "libraries": ["-lbpf", "-lelf", "-lz"]
    }
  ]
}
