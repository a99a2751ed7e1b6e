// Bindings of the crowd core: CrowdSim (social force and collision-free speed models).
#include "twin/crowd.hpp"

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstdint>
#include <limits>
#include <memory>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "arrays.hpp"

namespace py = pybind11;
using twin_bind::as_array;
using twin_bind::carray;
using twin_bind::dtype_str;
using twin_bind::require_finite;
using twin_bind::require_rows;
using twin_bind::require_vector;
using twin_bind::shape_str;

namespace {

// A float array (floats or integers accepted) as float64.
carray<double> float_array(const py::object& obj, const char* name) {
    py::array a = as_array(obj, name);
    const char kind = a.dtype().kind();
    if (a.size() > 0 && kind != 'f' && kind != 'i' && kind != 'u') {
        throw py::value_error(std::string(name) + " must be a float64 array, got " + dtype_str(a));
    }
    return carray<double>::ensure(a);
}

// An integer array as int32 (floats are refused so that 2.7 never becomes an index; values must fit).
carray<int32_t> int32_array(const py::object& obj, const char* name) {
    py::array a = as_array(obj, name);
    const char kind = a.dtype().kind();
    if (a.size() > 0 && kind != 'i' && kind != 'u') {
        throw py::value_error(std::string(name) + " must be an integer array, got " + dtype_str(a));
    }
    auto wide = carray<int64_t>::ensure(a);
    const int64_t* p = wide.data();
    for (py::ssize_t i = 0; i < wide.size(); ++i) {
        if (p[i] < std::numeric_limits<int32_t>::min() || p[i] > std::numeric_limits<int32_t>::max()) {
            throw py::value_error(std::string(name) + " must fit in int32, found " + std::to_string(p[i]) +
                                  " at flat index " + std::to_string(i));
        }
    }
    return carray<int32_t>::ensure(wide);
}

carray<int64_t> int64_array(const py::object& obj, const char* name) {
    py::array a = as_array(obj, name);
    const char kind = a.dtype().kind();
    if (a.size() > 0 && kind != 'i' && kind != 'u') {
        throw py::value_error(std::string(name) + " must be an integer array, got " + dtype_str(a));
    }
    return carray<int64_t>::ensure(a);
}

// (rows, cols) float64 where an empty array of any shape counts as (0, cols).
carray<double> rows_or_empty(const py::object& obj, const char* name, py::ssize_t cols) {
    auto a = float_array(obj, name);
    if (a.size() == 0) return carray<double>(std::vector<py::ssize_t>{0, cols});
    require_rows(a, name, cols);
    require_finite(a, name);
    return a;
}

void require_shape3(const py::array& a, const char* name, const char* dtype, py::ssize_t L, py::ssize_t ny,
                    py::ssize_t nx) {
    if (a.ndim() != 3 || a.shape(0) != L || a.shape(1) != ny || a.shape(2) != nx) {
        std::ostringstream s;
        s << name << " must be (" << L << ", " << ny << ", " << nx << ") " << dtype << ", got "
          << shape_str(a);
        throw py::value_error(s.str());
    }
}

// One per-agent array in id order as a new read-only numpy array (the core stores agents in a spatially
// sorted order, so the array is gathered: a copy of the state at the time of the call).
template <typename T>
py::array agent_array(const twin::CrowdSim& s, twin::CrowdArray what, int width = 1) {
    std::vector<py::ssize_t> shape{static_cast<py::ssize_t>(s.n_agents())};
    if (width > 1) shape.push_back(width);
    py::array_t<T> a(shape);
    s.read(what, a.mutable_data());
    py::detail::array_proxy(a.ptr())->flags &= ~py::detail::npy_api::NPY_ARRAY_WRITEABLE_;
    return std::move(a);
}

std::unique_ptr<twin::CrowdSim> make_sim(const std::string& model, double dt, uint64_t seed,
                                         const py::object& walkable_obj, double cell_size,
                                         const py::object& origins_obj, const py::object& level_z_obj,
                                         const py::object& walls_obj, const py::object& wall_levels_obj,
                                         const py::object& exit_cells_obj, const py::object& stairs_obj,
                                         const py::dict& params) {
    const twin::CrowdModel m = twin::crowd_model_from_name(model);
    py::array wa = as_array(walkable_obj, "walkable");
    const char kind = wa.dtype().kind();
    if (!(kind == 'b' || (kind == 'u' && wa.dtype().itemsize() == 1)) || wa.ndim() != 3) {
        throw py::value_error("walkable must be (levels, ny, nx) uint8 or bool, got " + shape_str(wa) + " " +
                              dtype_str(wa));
    }
    for (py::ssize_t k = 0; k < 3; ++k) {
        if (wa.shape(k) < 1 || wa.shape(k) > (1 << 24)) {
            throw py::value_error("walkable must have between 1 and 2^24 levels, rows and columns, got " +
                                  shape_str(wa));
        }
    }
    const py::ssize_t L = wa.shape(0), ny = wa.shape(1), nx = wa.shape(2);
    auto walk = carray<uint8_t>::ensure(wa);

    auto origins = float_array(origins_obj, "origins");
    if (origins.ndim() != 2 || origins.shape(0) != L || origins.shape(1) != 2) {
        throw py::value_error("origins must be (" + std::to_string(L) + ", 2) float64, got " +
                              shape_str(origins));
    }
    require_finite(origins, "origins");
    auto level_z = float_array(level_z_obj, "level_z");
    require_vector(level_z, "level_z", L);
    require_finite(level_z, "level_z");
    auto walls = rows_or_empty(walls_obj, "walls", 4);
    const py::ssize_t nw = walls.shape(0);
    auto wall_levels = int32_array(wall_levels_obj, "wall_levels");
    if (!(nw == 0 && wall_levels.size() == 0)) require_vector(wall_levels, "wall_levels", nw);
    py::array ea = as_array(exit_cells_obj, "exit_cells");
    if (ea.size() > 0 && ea.dtype().kind() != 'i' && ea.dtype().kind() != 'u') {
        throw py::value_error("exit_cells must be an integer array, got " + dtype_str(ea));
    }
    require_shape3(ea, "exit_cells", "int32", L, ny, nx);
    auto exits = int32_array(ea, "exit_cells");
    auto stairs = rows_or_empty(stairs_obj, "stairs", 8);

    std::vector<std::pair<std::string, double>> plist;
    for (const auto& kv : params) {
        if (!py::isinstance<py::str>(kv.first))
            throw py::value_error("params keys must be parameter names (str)");
        const std::string key = kv.first.cast<std::string>();
        double v;
        try {
            v = kv.second.cast<double>();
        } catch (const py::cast_error&) {
            throw py::value_error("params['" + key + "'] must be a number");
        }
        plist.emplace_back(key, v);
    }

    twin::CrowdGeometry g;
    g.levels = static_cast<int>(L);
    g.ny = static_cast<int>(ny);
    g.nx = static_cast<int>(nx);
    g.cell_size = cell_size;
    g.origins.assign(origins.data(), origins.data() + origins.size());
    g.level_z.assign(level_z.data(), level_z.data() + level_z.size());
    g.walkable.assign(walk.data(), walk.data() + walk.size());
    g.exit_cells.assign(exits.data(), exits.data() + exits.size());
    g.walls.assign(walls.data(), walls.data() + walls.size());
    g.wall_levels.assign(wall_levels.data(), wall_levels.data() + wall_levels.size());
    g.stairs.assign(stairs.data(), stairs.data() + stairs.size());
    return std::make_unique<twin::CrowdSim>(m, dt, seed, std::move(g), plist);
}

py::dict default_params(const std::string& model) {
    py::dict d;
    for (const twin::CrowdParam& p : twin::crowd_default_params(twin::crowd_model_from_name(model))) {
        d[py::str(p.name)] = p.value;
    }
    return d;
}

py::dict param_docs(const std::string& model) {
    py::dict d;
    for (const twin::CrowdParam& p : twin::crowd_default_params(twin::crowd_model_from_name(model))) {
        d[py::str(p.name)] = py::str(p.doc);
    }
    return d;
}

}  // namespace

void bind_crowd(py::module_& m) {
    using twin::CrowdSim;
    m.def(
        "greedy_exit_choice",
        [](const carray<double>& t_walk, const carray<int64_t>& order, const carray<bool>& walking,
           const carray<int32_t>& current, const carray<double>& capacity, double min_gain,
           double min_gain_s) {
            const py::ssize_t rows = require_rows(t_walk, "t_walk", -1), E = t_walk.shape(1);
            require_vector(order, "order", rows);
            require_vector(walking, "walking", rows);
            require_vector(current, "current", rows);
            require_vector(capacity, "capacity", E);
            const int64_t* o = order.data();
            for (py::ssize_t s = 0; s < rows; ++s) {
                if (o[s] < 0 || o[s] >= rows)
                    throw py::value_error("order must hold row indices of t_walk, in [0, m)");
            }
            carray<int32_t> chosen(rows);
            {
                py::gil_scoped_release release;
                static_assert(sizeof(bool) == sizeof(uint8_t), "bool arrays are read as bytes");
                twin::greedy_exit_choice(t_walk.data(), rows, E, o,
                                         reinterpret_cast<const uint8_t*>(walking.data()), current.data(),
                                         capacity.data(), min_gain, min_gain_s, chosen.mutable_data());
            }
            return chosen;
        },
        py::arg("t_walk"), py::arg("order"), py::arg("walking"), py::arg("current"), py::arg("capacity"),
        py::arg("min_gain"), py::arg("min_gain_s"),
        "Exit choice one agent after the other in `order`: each takes the exit it expects to pass first, "
        "max(walking time, people ahead / capacity), counting the choices before it, with hysteresis against "
        "its current exit (see twin.sim.crowd.CrowdModel._update_exit_choice). Returns (m,) int32.");
    py::class_<CrowdSim>(
        m, "CrowdSim",
        "Pedestrian dynamics (social force or collision-free speed model) on walkable rasters of "
        "several levels linked by stairs; step(n) advances n steps of dt in C++.")
        .def(py::init(&make_sim), py::kw_only(), py::arg("model"), py::arg("dt"), py::arg("seed"),
             py::arg("walkable"), py::arg("cell_size"), py::arg("origins"), py::arg("level_z"),
             py::arg("walls"), py::arg("wall_levels"), py::arg("exit_cells"), py::arg("stairs"),
             py::arg("params") = py::dict())
        .def_static("default_params", &default_params, py::arg("model"),
                    "Parameter names and default values of a model.")
        .def_static("param_docs", &param_docs, py::arg("model"),
                    "Parameter names and their meaning, unit and source.")
        .def(
            "set_fields",
            [](CrowdSim& s, const py::list& fields) {
                std::vector<carray<double>> keep;
                std::vector<const double*> ptrs;
                for (std::size_t f = 0; f < fields.size(); ++f) {
                    const std::string name = "fields[" + std::to_string(f) + "]";
                    auto a = float_array(fields[f], name.c_str());
                    require_shape3(a, name.c_str(), "float64", s.levels(), s.ny(), s.nx());
                    keep.push_back(a);
                    ptrs.push_back(keep.back().data());
                }
                // Safe: only buffers that the local arrays in `keep` hold alive are read.
                py::gil_scoped_release release;
                s.set_fields(ptrs);
            },
            py::arg("fields"))
        .def(
            "add_agents",
            [](CrowdSim& s, const py::object& positions_obj, const py::object& levels_obj,
               const py::object& speed_obj, const py::object& radius_obj, const py::object& start_obj,
               const py::object& field_obj, const py::object& up_obj, const py::object& down_obj) {
                auto positions = float_array(positions_obj, "positions");
                if (positions.size() == 0) positions = carray<double>(std::vector<py::ssize_t>{0, 2});
                const py::ssize_t n = require_rows(positions, "positions", 2);
                auto levels = int32_array(levels_obj, "levels");
                require_vector(levels, "levels", n);
                auto speed = float_array(speed_obj, "desired_speed");
                require_vector(speed, "desired_speed", n);
                auto radius = float_array(radius_obj, "radius");
                require_vector(radius, "radius", n);
                auto start = float_array(start_obj, "start_time");
                require_vector(start, "start_time", n);
                auto field = int32_array(field_obj, "field");
                require_vector(field, "field", n);
                auto up = float_array(up_obj, "stair_up_speed");
                require_vector(up, "stair_up_speed", n);
                auto down = float_array(down_obj, "stair_down_speed");
                require_vector(down, "stair_down_speed", n);
                const int64_t first =
                    s.add_agents(n, positions.data(), levels.data(), speed.data(), radius.data(),
                                 start.data(), field.data(), up.data(), down.data());
                carray<int64_t> ids(n);
                for (py::ssize_t k = 0; k < n; ++k) ids.mutable_data()[k] = first + k;
                return ids;
            },
            py::arg("positions"), py::arg("levels"), py::arg("desired_speed"), py::arg("radius"),
            py::arg("start_time"), py::arg("field"), py::arg("stair_up_speed"), py::arg("stair_down_speed"))
        .def(
            "set_field_of",
            [](CrowdSim& s, const py::object& ids_obj, const py::object& field_obj) {
                auto ids = int64_array(ids_obj, "ids");
                const py::ssize_t k = ids.size() == 0 ? 0 : require_vector(ids, "ids");
                auto field = int32_array(field_obj, "field");
                if (!(k == 0 && field.size() == 0)) require_vector(field, "field", k);
                s.set_field_of(k, ids.data(), field.data());
            },
            py::arg("ids"), py::arg("field"))
        .def(
            "set_desired_speed",
            [](CrowdSim& s, const py::object& ids_obj, const py::object& speed_obj) {
                auto ids = int64_array(ids_obj, "ids");
                const py::ssize_t k = ids.size() == 0 ? 0 : require_vector(ids, "ids");
                auto speed = float_array(speed_obj, "speed");
                if (!(k == 0 && speed.size() == 0)) require_vector(speed, "speed", k);
                s.set_desired_speed(k, ids.data(), speed.data());
            },
            py::arg("ids"), py::arg("speed"))
        .def(
            "set_start_time",
            [](CrowdSim& s, const py::object& ids_obj, const py::object& t_obj) {
                auto ids = int64_array(ids_obj, "ids");
                const py::ssize_t k = ids.size() == 0 ? 0 : require_vector(ids, "ids");
                auto t = float_array(t_obj, "start_time");
                if (!(k == 0 && t.size() == 0)) require_vector(t, "start_time", k);
                s.set_start_time(k, ids.data(), t.data());
            },
            py::arg("ids"), py::arg("start_time"))
        .def(
            "step",
            [](CrowdSim& s, int64_t n) {
                // Safe: the step touches only memory owned by the simulation (Python holds copies of its
                // arrays).
                py::gil_scoped_release release;
                s.step(n);
            },
            py::arg("n") = 1)
        .def_property_readonly("model", [](const CrowdSim& s) { return twin::crowd_model_name(s.model()); })
        .def_property_readonly("params",
                               [](const CrowdSim& s) {
                                   py::dict d;
                                   for (const auto& kv : s.params()) d[py::str(kv.first)] = kv.second;
                                   return d;
                               })
        .def_property_readonly("time", &CrowdSim::time)
        .def_property_readonly("step_count", &CrowdSim::step_count)
        .def_property_readonly("n_agents", &CrowdSim::n_agents)
        .def_property_readonly("n_fields", &CrowdSim::n_fields)
        .def_property_readonly("dt", &CrowdSim::dt)
        .def_property_readonly("seed", &CrowdSim::seed)
        .def_property_readonly("substeps", &CrowdSim::substeps)
        .def_property_readonly("list_pool_bytes", &CrowdSim::list_pool_bytes)
        .def_property_readonly("stair_capacity",
                               [](const CrowdSim& s) {
                                   carray<int64_t> out(s.n_stairs());
                                   for (int64_t k = 0; k < s.n_stairs(); ++k)
                                       out.mutable_data()[k] = s.stair_capacity(k);
                                   return out;
                               })
        .def_property_readonly(
            "stair_entries",
            [](const CrowdSim& s) {
                carray<int64_t> out(std::vector<py::ssize_t>{static_cast<py::ssize_t>(s.n_stairs()), 2});
                for (int64_t k = 0; k < s.n_stairs(); ++k) {
                    out.mutable_data()[2 * k] = s.stair_entries(k, 0);
                    out.mutable_data()[2 * k + 1] = s.stair_entries(k, 1);
                }
                return out;
            })
        .def_property_readonly_static("state_bytes_per_agent",
                                      [](const py::object&) { return CrowdSim::state_bytes_per_agent(); })
        .def_property_readonly(
            "positions",
            [](const CrowdSim& s) { return agent_array<double>(s, twin::CrowdArray::Positions, 2); })
        .def_property_readonly(
            "velocities",
            [](const CrowdSim& s) { return agent_array<double>(s, twin::CrowdArray::Velocities, 2); })
        .def_property_readonly(
            "levels", [](const CrowdSim& s) { return agent_array<int32_t>(s, twin::CrowdArray::Levels); })
        .def_property_readonly("z",
                               [](const CrowdSim& s) { return agent_array<double>(s, twin::CrowdArray::Z); })
        .def_property_readonly(
            "state", [](const CrowdSim& s) { return agent_array<int8_t>(s, twin::CrowdArray::State); })
        .def_property_readonly(
            "field", [](const CrowdSim& s) { return agent_array<int32_t>(s, twin::CrowdArray::Field); })
        .def_property_readonly(
            "exit_index",
            [](const CrowdSim& s) { return agent_array<int32_t>(s, twin::CrowdArray::ExitIndex); })
        .def_property_readonly(
            "exit_time", [](const CrowdSim& s) { return agent_array<double>(s, twin::CrowdArray::ExitTime); })
        .def_property_readonly(
            "stair_index",
            [](const CrowdSim& s) { return agent_array<int32_t>(s, twin::CrowdArray::StairIndex); })
        .def_property_readonly(
            "desired_speed",
            [](const CrowdSim& s) { return agent_array<float>(s, twin::CrowdArray::DesiredSpeed); })
        .def_property_readonly(
            "radius", [](const CrowdSim& s) { return agent_array<float>(s, twin::CrowdArray::Radius); })
        .def("counts", [](const CrowdSim& s) {
            int64_t c[4];
            s.counts(c);
            py::dict d;
            d["waiting"] = c[0];
            d["walking"] = c[1];
            d["on_stair"] = c[2];
            d["evacuated"] = c[3];
            return d;
        });
}
