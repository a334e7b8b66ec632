/**
 * @file safetensors.h
 * @brief Checkpoints in the safetensors format: write F32, read F32/F16/BF16.
 *
 * A safetensors file is
 *
 *     [ u64 little-endian N ][ N bytes of JSON header ][ raw tensor data ]
 *
 * and the header is one JSON object, name → entry:
 *
 *     {"model.norm.weight": {"dtype": "F32", "shape": [64], "data_offsets": [0, 256]},
 *      ...,
 *      "__metadata__": {"format": "pt"}}
 *
 * `data_offsets` are [begin, end) byte offsets relative to the start of the
 * data section (the byte after the header). Values are little-endian. The
 * optional `__metadata__` entry maps strings to strings.
 *
 * The reader treats every file as hostile: each malformed case (short file,
 * header length past the end, header that is not a JSON object, a missing or
 * mistyped field, an unknown dtype, a negative or absurd shape, offsets
 * outside the data section, overlapping tensors, gaps, a byte size that does
 * not match the shape) is a one-line TS_ERR_FORMAT naming the file and the
 * tensor. It never reads outside the file.
 *
 * The writer pads the header with spaces so the data starts at a multiple of
 * 8 bytes, packs the tensors back to back in the order given, and writes the
 * file atomically (a temporary file renamed into place), so a crash never
 * leaves half a checkpoint where the user's file was.
 */
#ifndef TS_SAFETENSORS_H
#define TS_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "core/arena.h"
#include "core/common.h"

/** Most dimensions a tensor in a file may have (the registry allows TS_MAX_DIMS). */
#define TS_ST_MAX_DIMS 8

/** Element types the reader knows (the safetensors names in the comments). */
typedef enum {
    TS_DTYPE_F32 = 0, /**< "F32": IEEE binary32 */
    TS_DTYPE_F16,     /**< "F16": IEEE binary16 */
    TS_DTYPE_BF16,    /**< "BF16": bfloat16, the top half of a binary32 */
    TS_DTYPE_F64,     /**< "F64": IEEE binary64 (known, not converted) */
    TS_DTYPE_I64,     /**< "I64" (known, not converted) */
    TS_DTYPE_I32,     /**< "I32" (known, not converted) */
    TS_DTYPE_I16,     /**< "I16" (known, not converted) */
    TS_DTYPE_I8,      /**< "I8" (known, not converted) */
    TS_DTYPE_U8,      /**< "U8" (known, not converted) */
    TS_DTYPE_BOOL,    /**< "BOOL" (known, not converted) */
    TS_DTYPE_F8_E4M3, /**< "F8_E4M3" (known, not converted) */
    TS_DTYPE_F8_E5M2, /**< "F8_E5M2" (known, not converted) */
    TS_DTYPE_COUNT    /**< number of known dtypes */
} ts_dtype;

/** @brief The safetensors name of a dtype ("F32", "BF16", ...). */
const char *ts_dtype_name(ts_dtype dtype);

/** @brief Bytes per element of a dtype. */
size_t ts_dtype_size(ts_dtype dtype);

/** @brief Convert an IEEE binary16 bit pattern to float (exact: subnormals, ±inf and NaN included). */
float ts_f16_to_f32(uint16_t h);

/** @brief Convert a bfloat16 bit pattern to float (exact: it is the upper 16 bits of a binary32). */
float ts_bf16_to_f32(uint16_t b);

/* ---- writing -------------------------------------------------------------- */

/** One tensor to write with ts_safetensors_write(): a name, a shape and F32 data. */
typedef struct {
    const char *name;  /**< tensor name; must be unique and not "__metadata__" */
    int ndim;          /**< number of dimensions, 0 (a scalar) to TS_ST_MAX_DIMS */
    const int *shape;  /**< @p ndim sizes, outermost first; each >= 0 */
    const float *data; /**< product(shape) floats, row-major */
} ts_st_entry;

/**
 * @brief Write tensors as an F32 safetensors file, atomically.
 *
 * Tensors are stored in the order given, back to back.
 * @param path          file to create or replace
 * @param entries       the tensors
 * @param n             number of entries (may be 0)
 * @param metadata_json NULL, or the text of a JSON object whose values are all
 *                      strings, stored as `__metadata__`
 * @return TS_OK; TS_ERR_ARG for a bad entry or metadata; TS_ERR_IO if the
 *         file cannot be written (the previous file, if any, is untouched).
 */
ts_status ts_safetensors_write(const char *path, const ts_st_entry *entries, int n, const char *metadata_json);

/**
 * @brief Save every registered tensor of @p p (registration order, F32, the
 *        registry's shapes and p->data) to @p path, atomically.
 * @param p             the registry (allocated)
 * @param path          file to create or replace
 * @param metadata_json NULL or a JSON object of strings, as in ts_safetensors_write().
 */
ts_status ts_safetensors_save(const ts_params *p, const char *path, const char *metadata_json);

/* ---- reading -------------------------------------------------------------- */

/** One tensor described by a file's header. */
typedef struct {
    char *name;                      /**< tensor name (owned by the ts_safetensors) */
    ts_dtype dtype;                  /**< element type */
    int ndim;                        /**< number of dimensions (0 = scalar) */
    int64_t shape[TS_ST_MAX_DIMS];   /**< sizes, outermost first */
    size_t numel;                    /**< product of the sizes */
    size_t begin;                    /**< first byte, relative to the data section */
    size_t end;                      /**< one past the last byte */
} ts_st_tensor;

/** An open safetensors file: the mapped bytes and the validated header. */
typedef struct {
    char *path;                  /**< file name, for error messages */
    const unsigned char *map;    /**< the whole file, mapped read-only (NULL if empty) */
    size_t size;                 /**< file size in bytes */
    const unsigned char *data;   /**< start of the data section */
    size_t data_size;            /**< bytes in the data section */
    ts_st_tensor *tensors;       /**< tensors in header order */
    int count;                   /**< number of tensors */
    int *by_name;                /**< indices into @ref tensors sorted by name, for lookups */
    char **meta_keys;            /**< `__metadata__` keys (owned) */
    char **meta_values;          /**< `__metadata__` values (owned) */
    int meta_count;              /**< number of metadata entries */
} ts_safetensors;

/**
 * @brief Open @p path, map it, parse and validate its header.
 *
 * On failure @p st is left closed (ts_safetensors_close() is harmless) and the
 * error names the file and what is wrong with it.
 */
ts_status ts_safetensors_open(ts_safetensors *st, const char *path);

/** @brief The tensor called @p name, or NULL. */
const ts_st_tensor *ts_safetensors_find(const ts_safetensors *st, const char *name);

/** @brief The `__metadata__` value for @p key, or NULL. */
const char *ts_safetensors_meta(const ts_safetensors *st, const char *key);

/**
 * @brief Read tensor @p name into @p dst as floats, converting F32, F16 or BF16.
 * @param st    an open file
 * @param name  tensor name
 * @param dst   where the floats go
 * @param numel number of floats @p dst holds; must equal the tensor's element count.
 * @return TS_ERR_FORMAT if the tensor is missing or has another dtype,
 *         TS_ERR_ARG if @p numel does not match.
 */
ts_status ts_safetensors_read_f32(const ts_safetensors *st, const char *name, float *dst, size_t numel);

/**
 * @brief Refuse a tensor holding ±inf or NaN (F32, F16 or BF16; other dtypes
 * pass): one line naming the file, the tensor, the first offending flat index
 * and its position in the shape.
 */
ts_status ts_safetensors_check_finite(const ts_safetensors *st, const ts_st_tensor *t);

/** @brief Unmap the file and free the header. Safe on a zeroed or already closed struct. */
void ts_safetensors_close(ts_safetensors *st);

/**
 * @brief Load every registered tensor of @p p from @p path into p->data.
 *
 * Every registered tensor must be in the file with exactly the registered
 * shape and dtype F32, F16 or BF16; a tensor in the file that the registry
 * does not have is an error too, so a checkpoint never loads silently into
 * the wrong config, and every value must be finite (a NaN or inf weight is
 * refused naming the tensor and the first offending index). Everything is
 * checked before anything is copied: on failure p->data is unchanged. F32 tensors load bit-identical to what was saved.
 */
ts_status ts_safetensors_load_params(ts_params *p, const char *path);

#endif
