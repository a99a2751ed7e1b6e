// Bindings of the spatial core: SegmentIndex2D (walls) and NeighborGrid (agents).
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <algorithm>
#include <limits>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <stdexcept>
#include <string>
#include <utility>

#include "arrays.hpp"
#include "twin/neighbor_grid.hpp"
#include "twin/segment_index.hpp"

namespace py = pybind11;
using twin_bind::carray;

namespace {

// Hand a core buffer to numpy without copying: the array owns the buffer through a capsule.
template <typename T>
py::array_t<T> to_numpy(twin::Buffer<T>&& buf, std::vector<py::ssize_t> shape) {
    auto* owner = new twin::Buffer<T>(std::move(buf));
    py::capsule free_when_done(owner, [](void* p) { delete static_cast<twin::Buffer<T>*>(p); });
    return py::array_t<T>(shape, owner->data.get(), free_when_done);
}

py::tuple csr_to_tuple(twin::CsrNeighbors&& csr, py::ssize_t rows) {
    const py::ssize_t nnz = csr.indices.size;
    return py::make_tuple(to_numpy(std::move(csr.offsets), {rows + 1}),
                          to_numpy(std::move(csr.indices), {nnz}), to_numpy(std::move(csr.distances), {nnz}));
}

// Optional per-row levels: None, or (k,) int32.
const int32_t* optional_levels(const py::object& levels, carray<int32_t>& holder, py::ssize_t rows,
                               const char* rows_name) {
    if (levels.is_none()) return nullptr;
    holder = carray<int32_t>::ensure(levels);
    if (!holder) throw py::value_error("levels must be a (n,) int32 array or None");
    if (holder.ndim() != 1 || holder.shape(0) != rows) {
        throw py::value_error("levels must be (" + std::to_string(rows) + ",) int32 (one per row of " +
                              rows_name + "), got " + twin_bind::shape_str(holder));
    }
    return holder.data();
}

double require_radius(double r, const char* name) {
    if (!(r >= 0) || !std::isfinite(r))
        throw py::value_error(std::string(name) + " must be a finite number >= 0, got " + std::to_string(r));
    return r;
}

// The grid plus a lock: queries share it, rebuild takes it alone (Python threads may call both at once).
struct GridHandle {
    twin::NeighborGrid grid;
    mutable std::shared_mutex mutex;
    GridHandle(double cell_size, int dim) : grid(cell_size, dim) {}
};

py::ssize_t require_points(const carray<double>& a, const char* name, int dim) {
    const py::ssize_t n = twin_bind::require_rows(a, name, dim);
    twin_bind::require_finite(a, name);
    return n;
}

}  // namespace

void bind_spatial(py::module_& m) {
    py::class_<twin::SegmentIndex2D>(
        m, "SegmentIndex2D", "Walls as 2-D segments per storey (level); BVH per level. See twin.spatial.")
        .def(py::init([](carray<double> segments, py::object levels) {
                 const py::ssize_t n = twin_bind::require_rows(segments, "segments", 4);
                 twin_bind::require_finite(segments, "segments");
                 carray<int32_t> lv;
                 const int32_t* lp = optional_levels(levels, lv, n, "segments");
                 // Safe without the GIL: only the C++ copies of the arrays above are read.
                 py::gil_scoped_release release;
                 return std::make_unique<twin::SegmentIndex2D>(segments.data(), n, lp);
             }),
             py::arg("segments"), py::kw_only(), py::arg("levels") = py::none())
        .def_property_readonly("size", &twin::SegmentIndex2D::size)
        .def_property_readonly("levels",
                               [](const twin::SegmentIndex2D& s) {
                                   const auto& v = s.levels();
                                   return py::array_t<int32_t>(static_cast<py::ssize_t>(v.size()), v.data());
                               })
        .def(
            "nearest",
            [](const twin::SegmentIndex2D& s, carray<double> points, py::object levels, double max_distance) {
                const py::ssize_t k = require_points(points, "points", 2);
                carray<int32_t> lv;
                const int32_t* lp = optional_levels(levels, lv, k, "points");
                if (!(max_distance >= 0))
                    throw py::value_error("max_distance must be >= 0 (inf allowed), got " +
                                          std::to_string(max_distance));
                py::array_t<double> distance(k), normal({k, py::ssize_t(2)}), point({k, py::ssize_t(2)});
                py::array_t<int64_t> segment(k);
                double *d = distance.mutable_data(), *nrm = normal.mutable_data(), *pt = point.mutable_data();
                int64_t* sg = segment.mutable_data();
                {
                    // Safe without the GIL: inputs and outputs are arrays held alive by this frame.
                    py::gil_scoped_release release;
                    s.nearest(points.data(), k, lp, max_distance, d, nrm, sg, pt);
                }
                return py::make_tuple(distance, normal, segment, point);
            },
            py::arg("points"), py::kw_only(), py::arg("levels") = py::none(),
            py::arg("max_distance") = std::numeric_limits<double>::infinity(),
            "-> (distance (k,), normal (k, 2), segment (k,) int64, point (k, 2))")
        .def(
            "within",
            [](const twin::SegmentIndex2D& s, carray<double> points, double radius, py::object levels) {
                const py::ssize_t k = require_points(points, "points", 2);
                require_radius(radius, "radius");
                carray<int32_t> lv;
                const int32_t* lp = optional_levels(levels, lv, k, "points");
                twin::CsrNeighbors csr;
                {
                    // Safe without the GIL: inputs are arrays held alive by this frame; output is C++-owned.
                    py::gil_scoped_release release;
                    csr = s.within(points.data(), k, radius, lp);
                }
                return csr_to_tuple(std::move(csr), k);
            },
            py::arg("points"), py::arg("radius"), py::kw_only(), py::arg("levels") = py::none(),
            "-> (offsets (k+1,) int64, indices (nnz,) int64, distances (nnz,) float64)");

    py::class_<GridHandle>(m, "NeighborGrid",
                           "Uniform grid for neighbour search, rebuilt each step. See twin.spatial.")
        .def(py::init([](double cell_size, int dim) {
                 if (dim != 2 && dim != 3)
                     throw py::value_error("dim must be 2 or 3, got " + std::to_string(dim));
                 if (!(cell_size > 0) || !std::isfinite(cell_size))
                     throw py::value_error("cell_size must be a finite number > 0, got " +
                                           std::to_string(cell_size));
                 return std::make_unique<GridHandle>(cell_size, dim);
             }),
             py::arg("cell_size"), py::kw_only(), py::arg("dim") = 2)
        .def_property_readonly("dim", [](const GridHandle& h) { return h.grid.dim(); })
        .def_property_readonly("cell_size", [](const GridHandle& h) { return h.grid.cell_size(); })
        .def_property_readonly("effective_cell_size",
                               [](const GridHandle& h) {
                                   std::shared_lock lock(h.mutex);
                                   return h.grid.effective_cell_size();
                               })
        .def_property_readonly("size",
                               [](const GridHandle& h) {
                                   std::shared_lock lock(h.mutex);
                                   return h.grid.size();
                               })
        .def_property_readonly("hashed",
                               [](const GridHandle& h) {
                                   std::shared_lock lock(h.mutex);
                                   return h.grid.hashed();
                               })
        .def_property_readonly("bucket_count",
                               [](const GridHandle& h) {
                                   std::shared_lock lock(h.mutex);
                                   return h.grid.bucket_count();
                               })
        .def(
            "rebuild",
            [](GridHandle& h, carray<double> points) {
                const py::ssize_t n = require_points(points, "points", h.grid.dim());
                if (n >= (py::ssize_t(1) << 31))
                    throw py::value_error("points must have fewer than 2^31 rows, got " + std::to_string(n));
                // Safe without the GIL: the points array is held by this frame; the grid is locked
                // exclusively (the lock is taken after releasing the GIL, so a waiting query cannot deadlock
                // us).
                py::gil_scoped_release release;
                std::unique_lock lock(h.mutex);
                h.grid.rebuild(points.data(), n);
            },
            py::arg("points"))
        .def(
            "query_radius",
            [](const GridHandle& h, carray<double> queries, double radius, bool exclude_self, bool sort) {
                const py::ssize_t k = require_points(queries, "queries", h.grid.dim());
                require_radius(radius, "radius");
                twin::CsrNeighbors csr;
                {
                    // Safe without the GIL: queries are held by this frame, the grid by a shared lock.
                    py::gil_scoped_release release;
                    std::shared_lock lock(h.mutex);
                    if (exclude_self && k != h.grid.size()) {
                        throw std::invalid_argument(
                            "exclude_self needs queries to be the indexed points: got " + std::to_string(k) +
                            " queries for " + std::to_string(h.grid.size()) + " points");
                    }
                    csr = h.grid.query_radius(queries.data(), k, radius, exclude_self, sort);
                }
                return csr_to_tuple(std::move(csr), k);
            },
            py::arg("queries"), py::arg("radius"), py::kw_only(), py::arg("exclude_self") = false,
            py::arg("sort") = true,
            "-> (offsets (k+1,) int64, indices (nnz,) int64, distances (nnz,) float64)")
        .def(
            "query_knn",
            [](const GridHandle& h, carray<double> queries, int64_t k_neighbors, bool exclude_self) {
                const py::ssize_t k = require_points(queries, "queries", h.grid.dim());
                if (k_neighbors < 1)
                    throw py::value_error("k_neighbors must be >= 1, got " + std::to_string(k_neighbors));
                if (k_neighbors > (int64_t(1) << 40) / std::max<int64_t>(k, 1))
                    throw py::value_error(
                        "k_neighbors is too large: the (queries, k_neighbors) result would hold " +
                        std::to_string(k) + " x " + std::to_string(k_neighbors) + " entries");
                twin::KNearest r;
                {
                    // Safe without the GIL: queries are held by this frame, the grid by a shared lock.
                    py::gil_scoped_release release;
                    std::shared_lock lock(h.mutex);
                    if (exclude_self && k != h.grid.size()) {
                        throw std::invalid_argument(
                            "exclude_self needs queries to be the indexed points: got " + std::to_string(k) +
                            " queries for " + std::to_string(h.grid.size()) + " points");
                    }
                    r = h.grid.query_knn(queries.data(), k, k_neighbors, exclude_self);
                }
                const py::ssize_t kn = static_cast<py::ssize_t>(k_neighbors);
                return py::make_tuple(to_numpy(std::move(r.indices), {k, kn}),
                                      to_numpy(std::move(r.distances), {k, kn}));
            },
            py::arg("queries"), py::arg("k_neighbors"), py::kw_only(), py::arg("exclude_self") = false,
            "-> (indices (k, kn) int64, distances (k, kn) float64)")
        .def(
            "pairs_within",
            [](const GridHandle& h, double radius) {
                require_radius(radius, "radius");
                twin::Buffer<int64_t> p;
                {
                    // Safe without the GIL: only the grid is read, under a shared lock.
                    py::gil_scoped_release release;
                    std::shared_lock lock(h.mutex);
                    p = h.grid.pairs_within(radius);
                }
                const py::ssize_t rows = p.size / 2;
                return to_numpy(std::move(p), {rows, py::ssize_t(2)});
            },
            py::arg("radius"), "-> (p, 2) int64 pairs i < j, sorted");
}
