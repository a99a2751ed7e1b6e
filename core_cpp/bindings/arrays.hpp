// Shared checks at the Python boundary: shapes and finiteness are verified once, with errors that name the
// argument.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cmath>
#include <cstdint>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace twin_bind {

namespace py = pybind11;

template <typename T>
using carray = py::array_t<T, py::array::c_style | py::array::forcecast>;

template <typename T>
inline const char* dtype_name() {
    if constexpr (std::is_same_v<T, double>) return "float64";
    if constexpr (std::is_same_v<T, float>) return "float32";
    if constexpr (std::is_same_v<T, int32_t>) return "int32";
    if constexpr (std::is_same_v<T, int64_t>) return "int64";
    if constexpr (std::is_same_v<T, uint8_t>) return "uint8";
    if constexpr (std::is_same_v<T, bool>) return "bool";
    return "?";
}

inline std::string shape_str(const py::array& a) {
    std::ostringstream s;
    s << "(";
    for (py::ssize_t i = 0; i < a.ndim(); ++i) s << (i ? ", " : "") << a.shape(i);
    if (a.ndim() == 1) s << ",";
    s << ")";
    return s.str();
}

// Require a 2-D array with `cols` columns (cols < 0: any); returns the row count.
template <typename T>
inline py::ssize_t require_rows(const carray<T>& a, const char* name, py::ssize_t cols) {
    if (a.ndim() != 2 || (cols >= 0 && a.shape(1) != cols)) {
        std::ostringstream s;
        s << name << " must be (n, " << cols << ") " << dtype_name<T>() << ", got " << shape_str(a);
        throw py::value_error(s.str());
    }
    return a.shape(0);
}

// Require a 1-D array, optionally of a given length (len < 0: any); returns its length.
template <typename T>
inline py::ssize_t require_vector(const carray<T>& a, const char* name, py::ssize_t len = -1) {
    if (a.ndim() != 1 || (len >= 0 && a.shape(0) != len)) {
        std::ostringstream s;
        s << name << " must be (" << (len >= 0 ? std::to_string(len) : std::string("n")) << ",) "
          << dtype_name<T>() << ", got " << shape_str(a);
        throw py::value_error(s.str());
    }
    return a.shape(0);
}

// Require every value to be finite (NaN and inf are rejected with the argument's name).
inline void require_finite(const carray<double>& a, const char* name) {
    const double* p = a.data();
    const py::ssize_t n = a.size();
    for (py::ssize_t i = 0; i < n; ++i) {
        if (!std::isfinite(p[i])) {
            throw py::value_error(std::string(name) +
                                  " must be finite, found a non-finite value at flat index " +
                                  std::to_string(i));
        }
    }
}

// The dtype of an array as numpy names it ("float64"), for error messages.
inline std::string dtype_str(const py::array& a) { return py::str(a.dtype()).cast<std::string>(); }

// Any array-like as a numpy array (no copy when it already is one); ValueError naming it otherwise.
inline py::array as_array(const py::object& obj, const char* name) {
    py::array a = py::array::ensure(obj);
    if (!a) throw py::value_error(std::string(name) + " must be an array");
    return a;
}

}  // namespace twin_bind
