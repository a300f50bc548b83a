{
  "targets": [
    {
      "target_name": "xenlab_shm",
      "sources": ["shm.c"],
      "cflags": ["-O2", "-Wall", "-Wextra", "-std=gnu11"]
    }
  ]
}
