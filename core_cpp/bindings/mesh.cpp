// Binding of twin::TriangleBVH: arrays are checked once here (shape, dtype kind, finiteness), then the work
// runs without the GIL.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <memory>
#include <string>

#include "arrays.hpp"
#include "twin/bvh.hpp"

namespace py = pybind11;
using twin_bind::carray;

namespace {

std::string dtype_str(const py::array& a) { return py::str(a.dtype()).cast<std::string>(); }

// Any real numeric array (or nested sequence) becomes a C-contiguous float64 (n, 3) array.
carray<double> points_arg(const py::object& obj, const char* name) {
    py::array raw = py::array::ensure(obj);
    if (!raw) throw py::value_error(std::string(name) + " must be an (n, 3) float64 array");
    const char kind = raw.dtype().kind();
    if (kind != 'f' && kind != 'i' && kind != 'u') {
        throw py::value_error(std::string(name) + " must be (n, 3) float64, got dtype " + dtype_str(raw));
    }
    carray<double> a = carray<double>::ensure(raw);
    twin_bind::require_rows(a, name, 3);
    twin_bind::require_finite(a, name);
    return a;
}

carray<int64_t> index_arg(const py::object& obj, const char* name) {
    py::array raw = py::array::ensure(obj);
    if (!raw) throw py::value_error(std::string(name) + " must be an (m, 3) int32 or int64 array");
    const char kind = raw.dtype().kind();
    if (kind != 'i' && kind != 'u') {
        throw py::value_error(std::string(name) + " must be (m, 3) int32 or int64, got dtype " +
                              dtype_str(raw));
    }
    if (kind == 'u' && raw.itemsize() == 8) {  // uint64 above int64 range would wrap on conversion
        const auto u = py::array_t<uint64_t, py::array::forcecast>::ensure(raw);
        const uint64_t* p = u.data();
        for (py::ssize_t i = 0; i < u.size(); ++i) {
            if (p[i] > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
                throw py::value_error(std::string(name) +
                                      " holds an index too large for int64: " + std::to_string(p[i]));
            }
        }
    }
    carray<int64_t> a = carray<int64_t>::ensure(raw);
    if (a.ndim() != 2 || a.shape(1) != 3) {
        throw py::value_error(std::string(name) + " must be (m, 3) int32 or int64, got " +
                              twin_bind::shape_str(a));
    }
    return a;
}

void require_same_rows(const carray<double>& a, const char* an, const carray<double>& b, const char* bn) {
    if (a.shape(0) != b.shape(0)) {
        throw py::value_error(std::string(an) + " and " + bn + " must have the same number of rows, got " +
                              std::to_string(a.shape(0)) + " and " + std::to_string(b.shape(0)));
    }
}

}  // namespace

void bind_mesh(py::module_& m) {
    using twin::TriangleBVH;
    py::class_<TriangleBVH>(
        m, "TriangleBVH",
        "Bounding volume hierarchy over a triangle mesh: ray casts, occlusion, closest points.")
        .def(py::init([](const py::object& vertices, const py::object& triangles) {
                 carray<double> v = points_arg(vertices, "vertices");
                 carray<int64_t> t = index_arg(triangles, "triangles");
                 const double* vp = v.data();
                 const int64_t* tp = t.data();
                 const auto nv = static_cast<std::size_t>(v.shape(0));
                 const auto nt = static_cast<std::size_t>(t.shape(0));
                 // The arrays are owned by v and t, kept alive in this frame; the build touches no Python
                 // object.
                 py::gil_scoped_release release;
                 return std::make_unique<TriangleBVH>(vp, nv, tp, nt);
             }),
             py::arg("vertices"), py::arg("triangles"))
        .def(
            "cast_rays",
            [](const TriangleBVH& self, const py::object& origins, const py::object& directions, double tmin,
               double tmax) {
                carray<double> o = points_arg(origins, "origins");
                carray<double> d = points_arg(directions, "directions");
                require_same_rows(o, "origins", d, "directions");
                if (!(std::isfinite(tmin) && tmin >= 0)) {
                    throw py::value_error("tmin must be finite and >= 0, got " + std::to_string(tmin));
                }
                if (!(tmax >= tmin)) {
                    throw py::value_error("tmax must be >= tmin, got tmax=" + std::to_string(tmax) +
                                          ", tmin=" + std::to_string(tmin));
                }
                const py::ssize_t n = o.shape(0);
                const double* dp = d.data();
                for (py::ssize_t i = 0; i < n; ++i) {
                    if (dp[3 * i] == 0 && dp[3 * i + 1] == 0 && dp[3 * i + 2] == 0) {
                        throw py::value_error("directions[" + std::to_string(i) + "] is the zero vector");
                    }
                }
                py::array_t<double> t(n);
                py::array_t<int64_t> tri(n);
                py::array_t<double> normal({n, py::ssize_t(3)});
                py::array_t<double> point({n, py::ssize_t(3)});
                const double* op = o.data();
                double* tp = t.mutable_data();
                int64_t* trp = tri.mutable_data();
                double* np = normal.mutable_data();
                double* pp = point.mutable_data();
                {
                    // Inputs and outputs are held by this frame; the traversal touches no Python object.
                    py::gil_scoped_release release;
                    self.cast_rays(op, dp, static_cast<std::size_t>(n), tmin, tmax, tp, trp, np, pp);
                }
                return py::make_tuple(t, tri, normal, point);
            },
            py::arg("origins"), py::arg("directions"), py::kw_only(), py::arg("tmin") = 0.0,
            py::arg("tmax") = std::numeric_limits<double>::infinity(),
            "First hit per ray: (t (k,), triangle (k,) int64, normal (k, 3), point (k, 3)).")
        .def(
            "occluded",
            [](const TriangleBVH& self, const py::object& a, const py::object& b, double eps) {
                carray<double> pa = points_arg(a, "a");
                carray<double> pb = points_arg(b, "b");
                require_same_rows(pa, "a", pb, "b");
                if (!(eps >= 0 && eps < 0.5)) {
                    throw py::value_error("eps must be in [0, 0.5), got " + std::to_string(eps));
                }
                const py::ssize_t n = pa.shape(0);
                py::array_t<bool> out(n);
                static_assert(sizeof(bool) == 1, "numpy bool is one byte");
                const double* ap = pa.data();
                const double* bp = pb.data();
                auto* op = reinterpret_cast<uint8_t*>(out.mutable_data());
                {
                    // Inputs and outputs are held by this frame; the traversal touches no Python object.
                    py::gil_scoped_release release;
                    self.occluded(ap, bp, static_cast<std::size_t>(n), eps, op);
                }
                return out;
            },
            py::arg("a"), py::arg("b"), py::kw_only(), py::arg("eps") = 1e-6,
            "Whether each open segment a[i] -> b[i] crosses a triangle: (k,) bool.")
        .def(
            "closest_points",
            [](const TriangleBVH& self, const py::object& points) {
                carray<double> p = points_arg(points, "points");
                const py::ssize_t n = p.shape(0);
                py::array_t<double> q({n, py::ssize_t(3)});
                py::array_t<int64_t> tri(n);
                py::array_t<double> dist(n);
                const double* pp = p.data();
                double* qp = q.mutable_data();
                int64_t* tp = tri.mutable_data();
                double* dp = dist.mutable_data();
                {
                    // Inputs and outputs are held by this frame; the traversal touches no Python object.
                    py::gil_scoped_release release;
                    self.closest_points(pp, static_cast<std::size_t>(n), qp, tp, dp);
                }
                return py::make_tuple(q, tri, dist);
            },
            py::arg("points"),
            "Closest mesh point per query: (point (k, 3), triangle (k,) int64, distance (k,)).")
        .def_property_readonly("n_triangles", &TriangleBVH::n_triangles)
        .def_property_readonly("n_vertices", &TriangleBVH::n_vertices)
        .def_property_readonly("bounds",
                               [](const TriangleBVH& self) {
                                   py::array_t<double> b({py::ssize_t(2), py::ssize_t(3)});
                                   std::copy(self.bounds(), self.bounds() + 6, b.mutable_data());
                                   return b;
                               })
        .def_property_readonly("stats", [](const TriangleBVH& self) {
            const twin::BvhStats& s = self.stats();
            py::dict d;
            d["n_binary_nodes"] = s.n_binary_nodes;
            d["n_nodes"] = s.n_nodes;
            d["n_leaves"] = s.n_leaves;
            d["depth"] = s.depth;
            d["build_seconds"] = s.build_seconds;
            return d;
        });
}
