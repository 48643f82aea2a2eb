{
  "targets": [
    {
      "target_name": "leaky_addon",
      "sources": ["leaky_addon.c"],
      "cflags": ["-O1", "-g", "-fno-omit-frame-pointer"]
    }
  ]
}
