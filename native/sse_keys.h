// newSealedObjectKey and kesSeal (native/sse_keys.c), exported by native/gcm.c with its gcm_instance as data.

#ifndef COFFER_SSE_KEYS_H
#define COFFER_SSE_KEYS_H

#include <node_api.h>

napi_value sse_new_sealed_object_key(napi_env env, napi_callback_info info);
napi_value sse_kes_seal(napi_env env, napi_callback_info info);

#endif
