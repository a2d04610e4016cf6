// What native/gcm.c keeps per environment (main thread, each worker thread), shared with native/dare_open.c.

#ifndef COFFER_GCM_INSTANCE_H
#define COFFER_GCM_INSTANCE_H

#include <stdbool.h>

#include <openssl/evp.h>

#define GCM_KEY_BYTES 32
#define GCM_IV_BYTES 12
#define GCM_TAG_BYTES 16

typedef struct {
  EVP_CIPHER *cipher;  // fetched once: an EVP_aes_256_gcm() would be fetched again on every init
  EVP_CIPHER_CTX *ctx; // holds a key only during a call, on the environment's own thread
  bool vaes;           // seal/open through vaes_gcm.c
} gcm_instance;

#endif
