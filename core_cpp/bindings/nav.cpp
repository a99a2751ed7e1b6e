// Bindings of the navigation core: DistanceField (walkable rasters, several storeys) and Graph (CSR
// networks).
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "arrays.hpp"
#include "twin/distance_field.hpp"
#include "twin/graph.hpp"

namespace py = pybind11;
using twin_bind::carray;
using twin_bind::require_finite;
using twin_bind::require_rows;
using twin_bind::require_vector;
using twin_bind::shape_str;

namespace {

std::string dtype_str(const py::array& a) { return py::str(a.dtype()).cast<std::string>(); }

// An integer array (any integer dtype, or an empty array of any dtype) as int64; floats are refused so that
// 2.7 is never silently truncated to a cell or node index.
carray<int64_t> int_array(const py::object& obj, const char* name) {
    py::array a = py::array::ensure(obj);
    if (!a) throw py::value_error(std::string(name) + " must be an integer array");
    const char kind = a.dtype().kind();
    if (a.size() > 0 && kind != 'i' && kind != 'u') {
        throw py::value_error(std::string(name) + " must be an integer array, got " + dtype_str(a));
    }
    return carray<int64_t>::ensure(a);
}

carray<double> float_array(const py::object& obj, const char* name) {
    py::array a = py::array::ensure(obj);
    if (!a) throw py::value_error(std::string(name) + " must be a float64 array");
    const char kind = a.dtype().kind();
    if (a.size() > 0 && kind != 'f' && kind != 'i' && kind != 'u') {
        throw py::value_error(std::string(name) + " must be a float64 array, got " + dtype_str(a));
    }
    return carray<double>::ensure(a);
}

// A read-only numpy view of memory owned by `owner` (kept alive as the view's base).
template <typename T>
py::array readonly_view(const std::vector<T>& v, std::vector<py::ssize_t> shape, py::handle owner) {
    py::array_t<T> a(shape, v.data(), owner);
    py::detail::array_proxy(a.ptr())->flags &= ~py::detail::npy_api::NPY_ARRAY_WRITEABLE_;
    return std::move(a);
}

struct PointsLevels {
    carray<double> points;
    carray<int64_t> levels;
    std::size_t k;
};

// points (k, 2) float64 and levels (k,) int (None: all level 0), checked against the field.
PointsLevels points_levels(const twin::DistanceField& f, const py::object& points, const py::object& levels,
                           const char* points_name) {
    PointsLevels pl{float_array(points, points_name), carray<int64_t>(), 0};
    if (pl.points.ndim() == 1 && pl.points.size() == 0)
        pl.points = carray<double>(std::vector<py::ssize_t>{0, 2});
    pl.k = static_cast<std::size_t>(require_rows(pl.points, points_name, 2));
    if (levels.is_none()) {
        pl.levels = carray<int64_t>(static_cast<py::ssize_t>(pl.k));
        std::fill(pl.levels.mutable_data(), pl.levels.mutable_data() + pl.k, int64_t(0));
    } else {
        pl.levels = int_array(levels, "levels");
        require_vector(pl.levels, "levels", static_cast<py::ssize_t>(pl.k));
    }
    f.check_levels(pl.levels.data(), pl.k, "levels");
    return pl;
}

void require_field(const twin::DistanceField& f, const carray<double>& d, const char* name) {
    if (d.ndim() != 3 || d.shape(0) != f.levels() || d.shape(1) != f.ny() || d.shape(2) != f.nx()) {
        std::ostringstream s;
        s << name << " must be (" << f.levels() << ", " << f.ny() << ", " << f.nx() << ") float64, got "
          << shape_str(d);
        throw py::value_error(s.str());
    }
}

// The optional per-cell cost factor: None (null) or (levels, ny, nx) float64, every value finite and > 0.
const double* cost_factor(const twin::DistanceField& f, const py::object& obj, carray<double>& keep) {
    if (obj.is_none()) return nullptr;
    keep = float_array(obj, "cost");
    const bool flat_ok =
        keep.ndim() == 2 && f.levels() == 1 && keep.shape(0) == f.ny() && keep.shape(1) == f.nx();
    if (flat_ok) keep = keep.reshape(std::vector<py::ssize_t>{1, keep.shape(0), keep.shape(1)});
    require_field(f, keep, "cost");
    f.check_cost(keep.data());
    return keep.data();
}

carray<double> field_array(const twin::DistanceField& f) {
    return carray<double>({py::ssize_t(f.levels()), py::ssize_t(f.ny()), py::ssize_t(f.nx())});
}

twin::DistanceField make_field(const py::object& walkable_obj, double cell_size,
                               const py::object& origins_obj, const py::object& connectors_obj, int stencil) {
    py::array wa = py::array::ensure(walkable_obj);
    if (!wa) throw py::value_error("walkable must be a bool or uint8 array");
    const char kind = wa.dtype().kind();
    if (!(kind == 'b' || (kind == 'u' && wa.dtype().itemsize() == 1))) {
        throw py::value_error("walkable must be a bool or uint8 array, got " + dtype_str(wa));
    }
    if (wa.ndim() != 2 && wa.ndim() != 3) {
        throw py::value_error("walkable must be (levels, ny, nx) or (ny, nx) bool or uint8, got " +
                              shape_str(wa));
    }
    for (py::ssize_t k = 0; k < wa.ndim(); ++k) {
        if (wa.shape(k) > std::numeric_limits<int32_t>::max()) {
            throw py::value_error("walkable is too large, got " + shape_str(wa));
        }
    }
    auto walk = carray<uint8_t>::ensure(wa);
    const int levels = wa.ndim() == 3 ? static_cast<int>(wa.shape(0)) : 1;
    const int ny = static_cast<int>(wa.shape(wa.ndim() - 2)), nx = static_cast<int>(wa.shape(wa.ndim() - 1));

    auto origins = float_array(origins_obj, "origins");
    if (origins.ndim() == 1 && origins.shape(0) == 2 && levels == 1) origins = origins.reshape({1, 2});
    if (origins.ndim() != 2 || origins.shape(0) != levels || origins.shape(1) != 2) {
        throw py::value_error("origins must be (" + std::to_string(levels) +
                              ", 2) float64 (x0, y0 per level), got " + shape_str(origins));
    }
    require_finite(origins, "origins");

    std::vector<twin::CellConnector> conns;
    if (!connectors_obj.is_none()) {
        auto c = float_array(connectors_obj, "connectors");
        if (!(c.ndim() == 1 && c.size() == 0)) {
            const py::ssize_t nc = require_rows(c, "connectors", 7);
            auto r = c.unchecked<2>();
            for (py::ssize_t i = 0; i < nc; ++i) {
                int32_t idx[6];
                for (int j = 0; j < 6; ++j) {
                    const double v = r(i, j);
                    if (!(std::isfinite(v) && v == std::floor(v) && std::fabs(v) < 2e9)) {
                        std::ostringstream s;
                        s << "connectors[" << i << ", " << j
                          << "] must be an integer (columns level_a, iy_a, ix_a, level_b, iy_b, ix_b), got "
                          << v;
                        throw py::value_error(s.str());
                    }
                    idx[j] = static_cast<int32_t>(v);
                }
                conns.push_back({idx[0], idx[1], idx[2], idx[3], idx[4], idx[5], r(i, 6)});
            }
        }
    }
    std::vector<double> org(origins.data(), origins.data() + origins.size());
    std::vector<uint8_t> w(walk.data(), walk.data() + walk.size());
    return twin::DistanceField(levels, ny, nx, cell_size, std::move(org), std::move(w), std::move(conns),
                               stencil);
}

void bind_distance_field(py::module_& m) {
    using twin::DistanceField;
    py::class_<DistanceField>(
        m, "DistanceField",
        "Shortest walking distances over walkable rasters of several levels linked by "
        "connectors (stairs); Dijkstra on an 8/16/32-neighbour stencil without corner cutting.")
        .def(py::init(&make_field), py::arg("walkable"), py::kw_only(), py::arg("cell_size"),
             py::arg("origins"), py::arg("connectors") = py::none(), py::arg("stencil") = 32)
        .def_property_readonly("levels", &DistanceField::levels)
        .def_property_readonly("ny", &DistanceField::ny)
        .def_property_readonly("nx", &DistanceField::nx)
        .def_property_readonly(
            "shape", [](const DistanceField& f) { return py::make_tuple(f.levels(), f.ny(), f.nx()); })
        .def_property_readonly("cell_size", &DistanceField::cell_size)
        .def_property_readonly("stencil", &DistanceField::stencil)
        .def_property_readonly("origins",
                               [](py::object self) {
                                   const auto& f = self.cast<const DistanceField&>();
                                   return readonly_view(f.origins(), {f.levels(), 2}, self);
                               })
        .def_property_readonly(
            "walkable",
            [](py::object self) {
                const auto& f = self.cast<const DistanceField&>();
                return readonly_view(f.walkable(), {f.levels(), f.ny(), f.nx()}, self).attr("view")("bool");
            })
        .def_property_readonly(
            "connectors",
            [](const DistanceField& f) {
                const auto& c = f.connectors();
                carray<double> out({static_cast<py::ssize_t>(c.size()), py::ssize_t(7)});
                auto o = out.mutable_unchecked<2>();
                for (std::size_t i = 0; i < c.size(); ++i) {
                    const double row[7] = {
                        double(c[i].level_a), double(c[i].iy_a), double(c[i].ix_a), double(c[i].level_b),
                        double(c[i].iy_b),    double(c[i].ix_b), c[i].cost};
                    for (int j = 0; j < 7; ++j) o(i, j) = row[j];
                }
                return out;
            })
        .def(
            "compute",
            [](const DistanceField& f, const py::object& targets_obj, const py::object& initial_obj,
               const py::object& cost_obj) {
                auto targets = int_array(targets_obj, "targets");
                if (targets.ndim() == 1 && targets.size() == 0)
                    targets = carray<int64_t>(std::vector<py::ssize_t>{0, 3});
                const auto t = static_cast<std::size_t>(require_rows(targets, "targets", 3));
                carray<double> initial;
                const double* init = nullptr;
                if (!initial_obj.is_none()) {
                    initial = float_array(initial_obj, "initial");
                    require_vector(initial, "initial", static_cast<py::ssize_t>(t));
                    init = initial.data();
                }
                f.check_targets(targets.data(), t, init);
                carray<double> cost_keep;
                const double* cost = cost_factor(f, cost_obj, cost_keep);
                auto out = field_array(f);
                double* o = out.mutable_data();
                const int64_t* tg = targets.data();
                {
                    // Safe: only plain buffers that these local numpy arrays keep alive are touched.
                    py::gil_scoped_release release;
                    f.compute(tg, t, init, o, cost);
                }
                return out;
            },
            py::arg("targets"), py::arg("initial") = py::none(), py::kw_only(), py::arg("cost") = py::none(),
            "Distances (levels, ny, nx) float64 in metres from targets (t, 3) int (level, iy, ix) with "
            "optional initial costs (t,) float64 and per-cell cost factors (levels, ny, nx) float64 (finite, "
            "> 0; a move costs its length times the mean factor of its two cells); inf where non-walkable or "
            "unreachable.")
        .def(
            "compute_from_points",
            [](const DistanceField& f, const py::object& points, const py::object& levels,
               const py::object& cost_obj) {
                PointsLevels pl = points_levels(f, points, levels, "points");
                std::vector<int64_t> targets;
                std::vector<double> initial;
                f.targets_from_points(pl.points.data(), pl.levels.data(), pl.k, targets, initial);
                carray<double> cost_keep;
                const double* cost = cost_factor(f, cost_obj, cost_keep);
                auto out = field_array(f);
                double* o = out.mutable_data();
                {
                    // Safe: only C++ vectors and the buffers of local numpy arrays are touched.
                    py::gil_scoped_release release;
                    f.compute(targets.data(), pl.k, initial.data(), o, cost);
                }
                return out;
            },
            py::arg("points"), py::arg("levels") = py::none(), py::kw_only(), py::arg("cost") = py::none(),
            "Distances (levels, ny, nx) float64 from points (t, 2) float64 on levels (t,) int: each point "
            "seeds "
            "its cell with the distance from the point to the cell centre.")
        .def(
            "locate",
            [](const DistanceField& f, const py::object& points, const py::object& levels) {
                PointsLevels pl = points_levels(f, points, levels, "points");
                carray<int64_t> out({static_cast<py::ssize_t>(pl.k), py::ssize_t(3)});
                auto o = out.mutable_unchecked<2>();
                auto p = pl.points.unchecked<2>();
                auto l = pl.levels.unchecked<1>();
                for (std::size_t i = 0; i < pl.k; ++i) {
                    int iy = 0, ix = 0;
                    const bool in = f.locate(p(i, 0), p(i, 1), static_cast<int>(l(i)), iy, ix);
                    o(i, 0) = in ? l(i) : -1;
                    o(i, 1) = in ? iy : -1;
                    o(i, 2) = in ? ix : -1;
                }
                return out;
            },
            py::arg("points"), py::arg("levels") = py::none(),
            "Cells (k, 3) int64 (level, iy, ix) containing points (k, 2); -1 rows outside the raster.")
        .def(
            "gradient",
            [](const DistanceField& f, const carray<double>& dist) {
                require_field(f, dist, "distances");
                carray<double> out(
                    {py::ssize_t(f.levels()), py::ssize_t(f.ny()), py::ssize_t(f.nx()), py::ssize_t(2)});
                double* o = out.mutable_data();
                const double* d = dist.data();
                {
                    // Safe: reads and writes only buffers of numpy arrays held by this frame.
                    py::gil_scoped_release release;
                    f.gradient(d, o);
                }
                return out;
            },
            py::arg("distances"),
            "Unit descent direction (levels, ny, nx, 2) float64 per cell (0 where none).")
        .def(
            "sample",
            [](const DistanceField& f, const carray<double>& dist, const py::object& points,
               const py::object& levels) {
                require_field(f, dist, "distances");
                PointsLevels pl = points_levels(f, points, levels, "points");
                carray<double> out(static_cast<py::ssize_t>(pl.k));
                double* o = out.mutable_data();
                const double* d = dist.data();
                {
                    // Safe: reads and writes only buffers of numpy arrays held by this frame.
                    py::gil_scoped_release release;
                    f.sample(d, pl.points.data(), pl.levels.data(), pl.k, o);
                }
                return out;
            },
            py::arg("distances"), py::arg("points"), py::arg("levels") = py::none(),
            "Distance (k,) float64 at points (k, 2) on levels (k,).")
        .def(
            "sample_direction",
            [](const DistanceField& f, const carray<double>& dist, const py::object& points,
               const py::object& levels) {
                require_field(f, dist, "distances");
                PointsLevels pl = points_levels(f, points, levels, "points");
                carray<double> out({static_cast<py::ssize_t>(pl.k), py::ssize_t(2)});
                double* o = out.mutable_data();
                const double* d = dist.data();
                {
                    // Safe: reads and writes only buffers of numpy arrays held by this frame.
                    py::gil_scoped_release release;
                    f.sample_direction(d, pl.points.data(), pl.levels.data(), pl.k, o);
                }
                return out;
            },
            py::arg("distances"), py::arg("points"), py::arg("levels") = py::none(),
            "Unit descent direction (k, 2) float64 at points (k, 2) on levels (k,).");
}

carray<int64_t> node_vector(const py::object& obj, const char* name) {
    auto a = int_array(obj, name);
    if (a.ndim() == 0) a = a.reshape({1});
    require_vector(a, name);
    return a;
}

twin::Graph make_graph(int64_t n_nodes, const py::object& src_obj, const py::object& dst_obj,
                       const py::object& weight_obj, const py::object& coords_obj, bool directed) {
    auto src = node_vector(src_obj, "src");
    const py::ssize_t m = src.shape(0);
    auto dst = int_array(dst_obj, "dst");
    require_vector(dst, "dst", m);
    auto weight = float_array(weight_obj, "weight");
    require_vector(weight, "weight", m);
    std::vector<double> coords;
    int dim = 0;
    if (!coords_obj.is_none()) {
        auto c = float_array(coords_obj, "coords");
        if (c.ndim() != 2 || c.shape(0) != n_nodes || (c.shape(1) != 2 && c.shape(1) != 3)) {
            throw py::value_error("coords must be (" + std::to_string(n_nodes) + ", 2) or (" +
                                  std::to_string(n_nodes) + ", 3) float64, got " + shape_str(c));
        }
        require_finite(c, "coords");
        dim = static_cast<int>(c.shape(1));
        coords.assign(c.data(), c.data() + c.size());
    }
    return twin::Graph(n_nodes, std::vector<int64_t>(src.data(), src.data() + m),
                       std::vector<int64_t>(dst.data(), dst.data() + m),
                       std::vector<double>(weight.data(), weight.data() + m), std::move(coords), dim,
                       directed);
}

void bind_graph(py::module_& m) {
    using twin::Graph;
    py::class_<Graph>(m, "Graph", "Weighted graph in CSR form: Dijkstra, A*, many-to-many (immutable).")
        .def(py::init(&make_graph), py::arg("n_nodes"), py::arg("src"), py::arg("dst"), py::arg("weight"),
             py::kw_only(), py::arg("coords") = py::none(), py::arg("directed") = true)
        .def(
            "with_weights",
            [](const Graph& g, const py::object& weight_obj) {
                auto weight = float_array(weight_obj, "weight");
                require_vector(weight, "weight", g.n_edges());
                return g.with_weights(std::vector<double>(weight.data(), weight.data() + weight.size()));
            },
            py::arg("weight"), "A new graph with the same edges and new weights (m,) float64 (inf: closed).")
        .def_property_readonly("n_nodes", &Graph::n_nodes)
        .def_property_readonly("n_edges", &Graph::n_edges)
        .def_property_readonly("directed", &Graph::directed)
        .def_property_readonly("max_heuristic_scale", &Graph::max_heuristic_scale)
        .def_property_readonly("src",
                               [](py::object self) {
                                   const auto& g = self.cast<const Graph&>();
                                   return readonly_view(g.src(), {g.n_edges()}, self);
                               })
        .def_property_readonly("dst",
                               [](py::object self) {
                                   const auto& g = self.cast<const Graph&>();
                                   return readonly_view(g.dst(), {g.n_edges()}, self);
                               })
        .def_property_readonly("weight",
                               [](py::object self) {
                                   const auto& g = self.cast<const Graph&>();
                                   return readonly_view(g.weights(), {g.n_edges()}, self);
                               })
        .def_property_readonly("coords",
                               [](py::object self) -> py::object {
                                   const auto& g = self.cast<const Graph&>();
                                   if (g.coord_dim() == 0) return py::none();
                                   return readonly_view(g.coords(), {g.n_nodes(), g.coord_dim()}, self);
                               })
        .def(
            "dijkstra",
            [](const Graph& g, const py::object& sources_obj, double limit) {
                auto sources = node_vector(sources_obj, "sources");
                const auto s = static_cast<std::size_t>(sources.shape(0));
                g.check_nodes(sources.data(), s, "sources");
                if (std::isnan(limit) || limit < 0) throw py::value_error("limit must be >= 0");
                const auto n = static_cast<py::ssize_t>(g.n_nodes());
                carray<double> dist({static_cast<py::ssize_t>(s), n});
                carray<int64_t> pred({static_cast<py::ssize_t>(s), n});
                double* d = dist.mutable_data();
                int64_t* p = pred.mutable_data();
                {
                    // Safe: the graph is immutable; only buffers of local numpy arrays are written.
                    py::gil_scoped_release release;
                    g.dijkstra(sources.data(), s, limit, d, p);
                }
                return py::make_tuple(dist, pred);
            },
            py::arg("sources"), py::kw_only(), py::arg("limit") = std::numeric_limits<double>::infinity(),
            "Distances (s, n) float64 and predecessors (s, n) int64 (-1: none) from sources (s,) int.")
        .def(
            "shortest_path",
            [](const Graph& g, int64_t source, int64_t target, bool astar, double heuristic_scale) {
                std::vector<int64_t> path;
                double len;
                {
                    // Safe: the graph is immutable and the path vector is local.
                    py::gil_scoped_release release;
                    len = g.shortest_path(source, target, astar, heuristic_scale, path);
                }
                carray<int64_t> out(static_cast<py::ssize_t>(path.size()));
                std::copy(path.begin(), path.end(), out.mutable_data());
                return py::make_tuple(out, len);
            },
            py::arg("source"), py::arg("target"), py::kw_only(), py::arg("astar") = true,
            py::arg("heuristic_scale") = 1.0,
            "(path (p,) int64 from source to target, length); ([], inf) if unreachable.")
        .def(
            "many_to_many",
            [](const Graph& g, const py::object& sources_obj, const py::object& targets_obj) {
                auto sources = node_vector(sources_obj, "sources");
                auto targets = node_vector(targets_obj, "targets");
                const auto s = static_cast<std::size_t>(sources.shape(0));
                const auto t = static_cast<std::size_t>(targets.shape(0));
                g.check_nodes(sources.data(), s, "sources");
                g.check_nodes(targets.data(), t, "targets");
                carray<double> out({static_cast<py::ssize_t>(s), static_cast<py::ssize_t>(t)});
                double* o = out.mutable_data();
                {
                    // Safe: the graph is immutable; only buffers of local numpy arrays are touched.
                    py::gil_scoped_release release;
                    g.many_to_many(sources.data(), s, targets.data(), t, o);
                }
                return out;
            },
            py::arg("sources"), py::arg("targets"),
            "Distances (s, t) float64 from sources (s,) to targets (t,).");
}

}  // namespace

void bind_nav(py::module_& m) {
    bind_distance_field(m);
    bind_graph(m);
}
