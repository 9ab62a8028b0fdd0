/* The hot loop of `V3Scanner._parse`, in C: whole frames of raw updates and snapshots.
 *
 * `scan_raw(buf, i, last_seq, out, seqs, triples)` reads frames from `buf` at
 * offset `i` (see `frames` for the layout) for as long as each one is whole,
 * passes its CRC-32C, decodes within its body, holds a raw update or snapshot
 * (kind byte 0 or 1) and carries a seq above the one before. For each, it
 * appends `(update, metadata, timestamp)` to `out` when `triples` is true, else
 * the update alone (and its seq to `seqs` unless that is None). It returns
 * `(i, last_seq)` at the first frame it does not take, which the Python loop
 * then reads as before: it alone decides between a checkpoint, a block, a
 * compressed update, a torn tail and damage, and words the errors. The C loop
 * never accepts a frame the Python loop would refuse; when in doubt it stops.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#define MIN_BODY 11
#define MAX_BODY 2147483648u /* 1 << 31 */
#define MAX_SEQ_BYTES 9      /* seqs below 2**63; longer var-uints go to Python */

static uint32_t crc_table[8][256];

static void init_crc_table(void) {
    for (uint32_t byte = 0; byte < 256; byte++) {
        uint32_t crc = byte;
        for (int bit = 0; bit < 8; bit++) {
            crc = (crc & 1) ? (crc >> 1) ^ 0x82F63B78u : crc >> 1;
        }
        crc_table[0][byte] = crc;
    }
    for (uint32_t byte = 0; byte < 256; byte++) {
        for (int t = 1; t < 8; t++) {
            uint32_t prev = crc_table[t - 1][byte];
            crc_table[t][byte] = (prev >> 8) ^ crc_table[0][prev & 0xFF];
        }
    }
}

/* CRC-32C (Castagnoli) continuing from `crc`, as `crc32c.crc32c(data, crc)`. */
static uint32_t crc32c_extend(uint32_t crc, const unsigned char *p, Py_ssize_t n) {
    crc = ~crc;
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    while (n >= 8) { /* slicing by 8 */
        uint64_t word;
        memcpy(&word, p, 8);
        word ^= crc;
        crc = crc_table[7][word & 0xFF] ^ crc_table[6][(word >> 8) & 0xFF] ^
              crc_table[5][(word >> 16) & 0xFF] ^ crc_table[4][(word >> 24) & 0xFF] ^
              crc_table[3][(word >> 32) & 0xFF] ^ crc_table[2][(word >> 40) & 0xFF] ^
              crc_table[1][(word >> 48) & 0xFF] ^ crc_table[0][word >> 56];
        p += 8;
        n -= 8;
    }
#endif
    while (n-- > 0) {
        crc = crc_table[0][(crc ^ *p++) & 0xFF] ^ (crc >> 8);
    }
    return ~crc;
}

static uint32_t load_u32(const unsigned char *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static double load_f64(const unsigned char *p) {
    uint64_t bits = 0;
    for (int k = 7; k >= 0; k--) {
        bits = bits << 8 | p[k];
    }
    double value;
    memcpy(&value, &bits, 8);
    return value;
}

/* A var-uint of at most MAX_SEQ_BYTES at body[*j] before `end`; 0 if there is none. */
static int read_varuint(const unsigned char *b, Py_ssize_t *j, Py_ssize_t end, uint64_t *value) {
    uint64_t result = 0;
    Py_ssize_t at = *j;
    for (int k = 0; k < MAX_SEQ_BYTES; k++) {
        if (at >= end) {
            return 0;
        }
        unsigned char byte = b[at++];
        result |= (uint64_t)(byte & 0x7F) << (7 * k);
        if (byte < 0x80) {
            *value = result;
            *j = at;
            return 1;
        }
    }
    return 0;
}

static PyObject *scan_raw(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    (void)module;
    if (nargs != 6) {
        PyErr_SetString(PyExc_TypeError, "scan_raw takes 6 arguments");
        return NULL;
    }
    PyObject *buf = args[0], *out = args[3], *seqs = args[4];
    if (!PyBytes_CheckExact(buf) || !PyList_CheckExact(out) ||
        (seqs != Py_None && !PyList_CheckExact(seqs))) {
        PyErr_SetString(PyExc_TypeError, "scan_raw(bytes, int, int, list, list | None, bool)");
        return NULL;
    }
    Py_ssize_t i = PyLong_AsSsize_t(args[1]);
    if (i == -1 && PyErr_Occurred()) {
        return NULL;
    }
    int triples = PyObject_IsTrue(args[5]);
    if (triples < 0) {
        return NULL;
    }
    uint64_t last_seq = PyLong_AsUnsignedLongLong(args[2]);
    if (last_seq == (uint64_t)-1 && PyErr_Occurred()) {
        PyErr_Clear(); /* a seq past 64 bits: Python reads on */
        return Py_BuildValue("(nO)", i, args[2]);
    }
    const unsigned char *b = (const unsigned char *)PyBytes_AS_STRING(buf);
    Py_ssize_t n = PyBytes_GET_SIZE(buf);
    uint64_t start_seq = last_seq;
    while (i >= 0 && n - i >= 8) {
        uint32_t length = load_u32(b + i);
        if (length < MIN_BODY || length > MAX_BODY || (Py_ssize_t)length > n - i - 8) {
            break;
        }
        if (crc32c_extend(crc32c_extend(0, b + i, 4), b + i + 8, length) != load_u32(b + i + 4)) {
            break;
        }
        Py_ssize_t j = i + 8, end = i + 8 + (Py_ssize_t)length;
        uint64_t seq, meta_len;
        if (!read_varuint(b, &j, end, &seq) || seq <= last_seq) {
            break;
        }
        unsigned char kind = b[j];
        if (kind > 1 || end - j < 10) { /* kind byte, float64 time, a metadata length */
            break;
        }
        double timestamp = load_f64(b + j + 1);
        j += 9;
        if (!read_varuint(b, &j, end, &meta_len) || meta_len > (uint64_t)(end - j)) {
            break;
        }
        PyObject *update = PyBytes_FromStringAndSize((const char *)b + j + meta_len,
                                                     end - j - (Py_ssize_t)meta_len);
        if (update == NULL) {
            return NULL;
        }
        int failed;
        if (triples) {
            PyObject *item = Py_BuildValue("(Ny#d)", update, (const char *)b + j,
                                           (Py_ssize_t)meta_len, timestamp);
            if (item == NULL) {
                return NULL;
            }
            failed = PyList_Append(out, item);
            Py_DECREF(item);
        } else {
            failed = PyList_Append(out, update);
            Py_DECREF(update);
            if (!failed && seqs != Py_None) {
                PyObject *number = PyLong_FromUnsignedLongLong(seq);
                if (number == NULL) {
                    return NULL;
                }
                failed = PyList_Append(seqs, number);
                Py_DECREF(number);
            }
        }
        if (failed) {
            return NULL;
        }
        last_seq = seq;
        i = end;
    }
    if (last_seq == start_seq) {
        return Py_BuildValue("(nO)", i, args[2]);
    }
    return Py_BuildValue("(nK)", i, (unsigned long long)last_seq);
}

static PyMethodDef methods[] = {
    {"scan_raw", (PyCFunction)(void (*)(void))scan_raw, METH_FASTCALL,
     "Read whole frames of raw updates from a buffer (see the module source)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT, "_framescan",
    "C loop for reading ystores frames of raw updates (optional; see scanning.py).",
    -1, methods,
};

PyMODINIT_FUNC PyInit__framescan(void) {
    init_crc_table();
    return PyModule_Create(&module_def);
}
