// Fixed-argument wrappers around the few variadic libvips calls Souk uses: Swift cannot call C
// variadic functions.
#include <vips/vips.h>

/// Starts libvips with its operation cache off: Souk never repeats an operation on the same image,
/// so the cache would only hold memory.
static inline int souk_vips_init(void) {
    if (vips_init("souk") != 0) return -1;
    vips_cache_set_max(0);
    return 0;
}

/// Decodes every pixel (so that truncated or corrupt data fails here, not later) and reports the size.
static inline int souk_vips_check(const void *buffer, size_t length, int *width, int *height, double *average) {
    VipsImage *image = vips_image_new_from_buffer(buffer, length, "", "fail_on", VIPS_FAIL_ON_TRUNCATED, NULL);
    if (image == NULL) return -1;
    *width = vips_image_get_width(image);
    *height = vips_image_get_height(image);
    int result = vips_avg(image, average, NULL);
    g_object_unref(image);
    return result;
}

/// Reads only the header: the size, without decoding the pixels.
static inline int souk_vips_header(const void *buffer, size_t length, int *width, int *height) {
    VipsImage *image = vips_image_new_from_buffer(buffer, length, "", NULL);
    if (image == NULL) return -1;
    *width = vips_image_get_width(image);
    *height = vips_image_get_height(image);
    g_object_unref(image);
    return 0;
}

/// A JPEG at most `width` × `width`, never enlarged, metadata stripped. The caller frees `*out` with g_free.
static inline int souk_vips_thumbnail_jpeg(const void *buffer, size_t length, int width, int quality, void **out, size_t *out_length) {
    VipsImage *thumbnail = NULL;
    if (vips_thumbnail_buffer((void *)buffer, length, &thumbnail, width, "height", width, "size", VIPS_SIZE_DOWN, NULL) != 0) return -1;
    int result = vips_jpegsave_buffer(thumbnail, out, out_length, "Q", quality, "strip", TRUE, NULL);
    g_object_unref(thumbnail);
    return result;
}

static inline const char *souk_vips_error(void) { return vips_error_buffer(); }
static inline void souk_vips_error_clear(void) { vips_error_clear(); }
static inline void souk_g_free(void *pointer) { g_free(pointer); }
