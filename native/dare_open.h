// openBlock (native/dare_open.c), exported by native/gcm.c with its gcm_instance as the callback data.

#ifndef COFFER_DARE_OPEN_H
#define COFFER_DARE_OPEN_H

#include <node_api.h>

napi_value dare_open_block(napi_env env, napi_callback_info info);

#endif
