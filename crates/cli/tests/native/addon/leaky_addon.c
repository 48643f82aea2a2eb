/* An N-API addon that leaks on each call: leak(bytes) mallocs a block and never frees it. */
#include <node_api.h>
#include <stdlib.h>
#include <string.h>

static void *volatile sink;

__attribute__((noinline)) void addon_leaky_alloc(size_t bytes) {
    sink = malloc(bytes); /* never freed */
}

static napi_value Leak(napi_env env, napi_callback_info info) {
    size_t argc = 1;
    napi_value argv[1];
    napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
    int64_t bytes = 0;
    napi_get_value_int64(env, argv[0], &bytes);
    addon_leaky_alloc((size_t)bytes);
    return NULL;
}

static napi_value Init(napi_env env, napi_value exports) {
    napi_value fn;
    napi_create_function(env, "leak", NAPI_AUTO_LENGTH, Leak, NULL, &fn);
    napi_set_named_property(env, exports, "leak", fn);
    return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, Init)
