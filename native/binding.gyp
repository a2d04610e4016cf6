# Built by native/build.mjs (npm ci / npm install run it): node-gyp rebuild --nodedir=<the running Node's
# headers>, never a header download. Output: native/build/Release/coffer_gcm.node, coffer_hash.node,
# coffer_md5.node and coffer_fs.node (separate addons, so each works without the others).
{
  "targets": [
    {
      "target_name": "coffer_gcm",
      "sources": ["gcm.c", "vaes_gcm.c", "dare_open.c", "sse_keys.c"],
      "defines": ["NAPI_VERSION=8", "OPENSSL_API_COMPAT=30000", "OPENSSL_NO_DEPRECATED"],
      "cflags": ["-std=c11", "-Wall", "-Wextra", "-fvisibility=hidden"],
      # OpenSSL comes from the node executable, which exports it: resolve every symbol at load time, so a
      # Node without them fails to load the addon (and Coffer uses node:crypto) rather than dying mid-call.
      "ldflags": ["-Wl,-z,now"],
      "conditions": [
        ["OS=='mac'", {"xcode_settings": {"OTHER_CFLAGS": ["-std=c11", "-fvisibility=hidden"]}}]
      ]
    },
    {
      "target_name": "coffer_hash",
      "sources": ["hash.c"],
      "defines": ["NAPI_VERSION=8", "OPENSSL_API_COMPAT=30000", "OPENSSL_NO_DEPRECATED"],
      "cflags": ["-std=c11", "-Wall", "-Wextra", "-fvisibility=hidden"],
      "ldflags": ["-Wl,-z,now"],
      "conditions": [
        ["OS=='mac'", {"xcode_settings": {"OTHER_CFLAGS": ["-std=c11", "-fvisibility=hidden"]}}]
      ]
    },
    {
      "target_name": "coffer_md5",
      "sources": ["md5.c", "md5_lanes.c"],
      # MD5_CTX / MD5_Update are deprecated in OpenSSL 3 but exported by Node: no OPENSSL_NO_DEPRECATED here.
      "defines": ["NAPI_VERSION=8", "OPENSSL_API_COMPAT=30000"],
      "cflags": ["-std=gnu11", "-O3", "-Wall", "-Wextra", "-fvisibility=hidden"],
      "ldflags": ["-Wl,-z,now"],
      "conditions": [
        ["OS=='mac'", {"xcode_settings": {"OTHER_CFLAGS": ["-std=gnu11", "-fvisibility=hidden"]}}]
      ]
    },
    {
      "target_name": "coffer_fs",
      "sources": ["fsops.c"],
      "defines": ["NAPI_VERSION=8"],
      "cflags": ["-std=c11", "-Wall", "-Wextra", "-fvisibility=hidden"],
      # libuv's uv_err_name/uv_strerror come from the node executable: resolve them at load time.
      "ldflags": ["-Wl,-z,now"],
      "conditions": [
        ["OS=='mac'", {"xcode_settings": {"OTHER_CFLAGS": ["-std=c11", "-fvisibility=hidden"]}}]
      ]
    }
  ]
}
