/**
 * @file npy.h
 * @brief Arrays as NumPy .npy files (format version 1.0), for `np.load`.
 *
 * Layout: the magic "\x93NUMPY", version bytes 1 0, a little-endian u16
 * header length, then a Python dict literal such as
 *
 *     {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }
 *
 * padded with spaces and ended by '\n' so the data starts at a multiple of
 * 64 bytes, then the elements in C (row-major) order, little-endian.
 */
#ifndef TS_NPY_H
#define TS_NPY_H

#include <stdint.h>

#include "core/common.h"

/** Most dimensions ts_npy_save_f32() accepts. */
#define TS_NPY_MAX_DIMS 8

/**
 * @brief Write a float32 array ('<f4') to @p path, atomically.
 * @param path  file to create or replace
 * @param data  product(shape) floats, row-major (may be NULL if that is 0)
 * @param ndim  0 (a scalar) to TS_NPY_MAX_DIMS
 * @param shape @p ndim sizes (>= 0), outermost first
 */
ts_status ts_npy_save_f32(const char *path, const float *data, int ndim, const int *shape);

/** @brief Same as ts_npy_save_f32() for int32 data ('<i4'), e.g. token ids. */
ts_status ts_npy_save_i32(const char *path, const int32_t *data, int ndim, const int *shape);

#endif
