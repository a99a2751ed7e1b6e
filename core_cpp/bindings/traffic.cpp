// Bindings of the traffic core: TrafficSim (IDM car following, lane changes, junctions, signals).
#include "twin/traffic.hpp"

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <cstdint>
#include <limits>
#include <memory>
#include <set>
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

template <typename T>
carray<T> copy_vec(const std::vector<T>& v) {
    carray<T> out(static_cast<py::ssize_t>(v.size()));
    std::copy(v.begin(), v.end(), out.mutable_data());
    return out;
}

// 1-D float64 (integers accepted), finite.
carray<double> f64(const py::object& obj, const char* name, py::ssize_t len = -1) {
    py::array a = as_array(obj, name);
    const char kind = a.dtype().kind();
    if (a.size() > 0 && kind != 'f' && kind != 'i' && kind != 'u') {
        throw py::value_error(std::string(name) + " must be a float64 array, got " + dtype_str(a));
    }
    auto c = carray<double>::ensure(a);
    require_vector(c, name, len);
    require_finite(c, name);
    return c;
}

// 1-D integer array converted to T (floats refused, values must fit).
template <typename T>
carray<T> ints(const py::object& obj, const char* name, py::ssize_t len = -1) {
    py::array a = as_array(obj, name);
    const char kind = a.dtype().kind();
    if (a.size() > 0 && kind != 'i' && kind != 'u' && kind != 'b') {
        throw py::value_error(std::string(name) + " must be an integer array (" + twin_bind::dtype_name<T>() +
                              "), got " + dtype_str(a));
    }
    auto wide = carray<int64_t>::ensure(a);
    require_vector(wide, name, len);
    const int64_t* p = wide.data();
    for (py::ssize_t i = 0; i < wide.size(); ++i) {
        if (p[i] < static_cast<int64_t>(std::numeric_limits<T>::min()) ||
            p[i] > static_cast<int64_t>(std::numeric_limits<T>::max())) {
            throw py::value_error(std::string(name) + " must fit in " + twin_bind::dtype_name<T>() +
                                  ", found " + std::to_string(p[i]) + " at index " + std::to_string(i));
        }
    }
    return carray<T>::ensure(wide);
}

template <typename T>
std::vector<T> vec(const carray<T>& a) {
    return std::vector<T>(a.data(), a.data() + a.size());
}

// uint8 codes: integer arrays, or bytes / str of ASCII characters (signal states, directions).
std::vector<uint8_t> u8(const py::object& obj, const char* name) {
    if (py::isinstance<py::bytes>(obj)) {
        const std::string s = obj.cast<std::string>();
        return std::vector<uint8_t>(s.begin(), s.end());
    }
    if (py::isinstance<py::str>(obj)) {
        const std::string s = obj.cast<std::string>();
        return std::vector<uint8_t>(s.begin(), s.end());
    }
    py::array a = as_array(obj, name);
    if (a.dtype().kind() == 'S' && a.ndim() == 1 && a.dtype().itemsize() == 1) {
        std::vector<uint8_t> out(static_cast<std::size_t>(a.size()));
        const uint8_t* p = static_cast<const uint8_t*>(a.data());
        std::copy(p, p + a.size(), out.begin());
        return out;
    }
    return vec(ints<uint8_t>(obj, name));
}

const char* kNetworkNames[] = {
    "lane_edge",
    "lane_index",
    "lane_length",
    "lane_speed",
    "lane_allow_passenger",
    "lane_shape_offsets",
    "lane_shape_xy",
    "edge_lane_offsets",
    "edge_length",
    "link_from_lane",
    "link_to_lane",
    "link_length",
    "link_speed",
    "link_dir",
    "link_junction",
    "link_tls",
    "link_tls_index",
    "link_major",
    "link_foe_offsets",
    "link_foes",
    "lane_link_offsets",
    "lane_links",
    "tls_offset",
    "tls_phase_offsets",
    "phase_duration",
    "phase_min",
    "phase_max",
    "phase_state_offsets",
    "phase_state",
    "tls_actuated",
};

std::unique_ptr<twin::TrafficSim> make_sim(double dt, int64_t seed, const py::dict& params,
                                           const py::kwargs& kw) {
    std::set<std::string> known(std::begin(kNetworkNames), std::end(kNetworkNames));
    for (const auto& kv : kw) {
        const std::string key = py::str(kv.first).cast<std::string>();
        if (!known.count(key))
            throw py::type_error("TrafficSim() got an unexpected keyword argument '" + key + "'");
    }
    auto get = [&](const char* name) -> py::object {
        if (!kw.contains(name))
            throw py::type_error(std::string("TrafficSim() missing keyword argument '") + name + "'");
        return kw[name];
    };
    twin::TrafficNetwork n;
    n.lane_edge = vec(ints<int32_t>(get("lane_edge"), "lane_edge"));
    const py::ssize_t nl = static_cast<py::ssize_t>(n.lane_edge.size());
    n.lane_index = vec(ints<int32_t>(get("lane_index"), "lane_index", nl));
    n.lane_length = vec(f64(get("lane_length"), "lane_length", nl));
    n.lane_speed = vec(f64(get("lane_speed"), "lane_speed", nl));
    n.lane_allow = vec(ints<uint8_t>(get("lane_allow_passenger"), "lane_allow_passenger", nl));
    n.lane_shape_offsets = vec(ints<int64_t>(get("lane_shape_offsets"), "lane_shape_offsets", nl + 1));
    {
        py::array a = as_array(get("lane_shape_xy"), "lane_shape_xy");
        if (a.dtype().kind() != 'f' && a.dtype().kind() != 'i') {
            throw py::value_error("lane_shape_xy must be (p, 2) float64, got " + dtype_str(a));
        }
        auto xy = carray<double>::ensure(a);
        require_rows(xy, "lane_shape_xy", 2);
        require_finite(xy, "lane_shape_xy");
        n.lane_shape_xy = vec(xy);
    }
    n.edge_length = vec(f64(get("edge_length"), "edge_length"));
    const py::ssize_t ne = static_cast<py::ssize_t>(n.edge_length.size());
    n.edge_lane_offsets = vec(ints<int64_t>(get("edge_lane_offsets"), "edge_lane_offsets", ne + 1));
    n.link_from_lane = vec(ints<int32_t>(get("link_from_lane"), "link_from_lane"));
    const py::ssize_t nk = static_cast<py::ssize_t>(n.link_from_lane.size());
    n.link_to_lane = vec(ints<int32_t>(get("link_to_lane"), "link_to_lane", nk));
    n.link_length = vec(f64(get("link_length"), "link_length", nk));
    n.link_speed = vec(f64(get("link_speed"), "link_speed", nk));
    n.link_dir = u8(get("link_dir"), "link_dir");
    if (static_cast<py::ssize_t>(n.link_dir.size()) != nk) {
        throw py::value_error("link_dir must be (" + std::to_string(nk) + ",) uint8, got " +
                              std::to_string(n.link_dir.size()) + " entries");
    }
    n.link_junction = vec(ints<int32_t>(get("link_junction"), "link_junction", nk));
    n.link_tls = vec(ints<int32_t>(get("link_tls"), "link_tls", nk));
    n.link_tls_index = vec(ints<int32_t>(get("link_tls_index"), "link_tls_index", nk));
    n.link_major = vec(ints<uint8_t>(get("link_major"), "link_major", nk));
    n.link_foe_offsets = vec(ints<int64_t>(get("link_foe_offsets"), "link_foe_offsets", nk + 1));
    n.link_foes = vec(ints<int32_t>(get("link_foes"), "link_foes"));
    n.lane_link_offsets = vec(ints<int64_t>(get("lane_link_offsets"), "lane_link_offsets", nl + 1));
    n.lane_links = vec(ints<int32_t>(get("lane_links"), "lane_links"));
    n.tls_offset = vec(f64(get("tls_offset"), "tls_offset"));
    const py::ssize_t nt = static_cast<py::ssize_t>(n.tls_offset.size());
    n.tls_phase_offsets = vec(ints<int64_t>(get("tls_phase_offsets"), "tls_phase_offsets", nt + 1));
    n.phase_duration = vec(f64(get("phase_duration"), "phase_duration"));
    const py::ssize_t np = static_cast<py::ssize_t>(n.phase_duration.size());
    n.phase_min = vec(f64(get("phase_min"), "phase_min", np));
    n.phase_max = vec(f64(get("phase_max"), "phase_max", np));
    n.phase_state_offsets = vec(ints<int64_t>(get("phase_state_offsets"), "phase_state_offsets", np + 1));
    n.phase_state = u8(get("phase_state"), "phase_state");
    n.tls_actuated = vec(ints<uint8_t>(get("tls_actuated"), "tls_actuated", nt));

    std::vector<std::pair<std::string, double>> plist;
    for (const auto& kv : params) {
        if (!py::isinstance<py::str>(kv.first))
            throw py::value_error("params keys must be parameter names (str)");
        const std::string key = kv.first.cast<std::string>();
        try {
            plist.emplace_back(key, kv.second.cast<double>());
        } catch (const py::cast_error&) {
            throw py::value_error("params['" + key + "'] must be a number");
        }
    }
    if (seed < 0) throw py::value_error("seed must be >= 0, got " + std::to_string(seed));
    return std::make_unique<twin::TrafficSim>(std::move(n), dt, static_cast<uint64_t>(seed), plist);
}

template <typename T>
py::array vehicle_array(const twin::TrafficSim& s, twin::TrafficArray what) {
    py::array_t<T> a(static_cast<py::ssize_t>(s.n_vehicles()));
    s.read(what, a.mutable_data());
    py::detail::array_proxy(a.ptr())->flags &= ~py::detail::npy_api::NPY_ARRAY_WRITEABLE_;
    return std::move(a);
}

}  // namespace

void bind_traffic(py::module_& m) {
    using twin::TrafficArray;
    using twin::TrafficSim;
    py::class_<TrafficSim> cls(
        m, "TrafficSim",
        "Microscopic road traffic (IDM car following, MOBIL and strategic lane changes, signals and priority "
        "junctions) on a lane-level network; step(n) advances n steps of dt in C++.");
    cls.def(py::init(&make_sim), py::kw_only(), py::arg("dt"), py::arg("seed"),
            py::arg("params") = py::dict())
        .def_static(
            "default_params",
            []() {
                py::dict d;
                for (const auto& p : twin::traffic_default_params()) d[py::str(p.name)] = p.value;
                return d;
            },
            "Parameter names and default values.")
        .def_static(
            "param_docs",
            []() {
                py::dict d;
                for (const auto& p : twin::traffic_default_params()) d[py::str(p.name)] = py::str(p.doc);
                return d;
            },
            "Parameter names and their meaning, unit and source.")
        .def(
            "add_vehicle_types",
            [](TrafficSim& s, const py::object& length, const py::object& min_gap, const py::object& accel,
               const py::object& decel, const py::object& emergency_decel, const py::object& tau,
               const py::object& max_speed, const py::object& speed_factor, const py::object& delta,
               const py::object& speed_dev) {
                auto a_len = f64(length, "length");
                const py::ssize_t t = a_len.size();
                auto a_gap = f64(min_gap, "min_gap", t);
                auto a_acc = f64(accel, "accel", t);
                auto a_dec = f64(decel, "decel", t);
                auto a_em = f64(emergency_decel, "emergency_decel", t);
                auto a_tau = f64(tau, "tau", t);
                auto a_vmax = f64(max_speed, "max_speed", t);
                auto a_sf = f64(speed_factor, "speed_factor", t);
                auto a_delta = f64(delta, "delta", t);
                carray<double> a_dev =
                    speed_dev.is_none() ? carray<double>(t) : f64(speed_dev, "speed_dev", t);
                if (speed_dev.is_none()) std::fill(a_dev.mutable_data(), a_dev.mutable_data() + t, 0.0);
                return s.add_vehicle_types(t, a_len.data(), a_gap.data(), a_acc.data(), a_dec.data(),
                                           a_em.data(), a_tau.data(), a_vmax.data(), a_sf.data(),
                                           a_dev.data(), a_delta.data());
            },
            py::arg("length"), py::arg("min_gap"), py::arg("accel"), py::arg("decel"),
            py::arg("emergency_decel"), py::arg("tau"), py::arg("max_speed"), py::arg("speed_factor"),
            py::arg("delta"), py::kw_only(), py::arg("speed_dev") = py::none())
        .def(
            "add_vehicles",
            [](TrafficSim& s, const py::object& depart_s, const py::object& type,
               const py::object& route_offsets, const py::object& route_edges, const py::object& depart_lane,
               const py::object& depart_speed, const py::object& priority, const py::object& depart_pos) {
                auto a_dep = f64(depart_s, "depart_s");
                const py::ssize_t n = a_dep.size();
                auto a_type = ints<int32_t>(type, "type", n);
                auto a_off = ints<int64_t>(route_offsets, "route_offsets", n + 1);
                auto a_edges = ints<int32_t>(route_edges, "route_edges");
                if (a_off.data()[n] != a_edges.size()) {
                    throw py::value_error(
                        "route_offsets[-1] must equal len(route_edges) = " + std::to_string(a_edges.size()) +
                        ", got " + std::to_string(a_off.data()[n]));
                }
                auto a_lane = ints<int32_t>(depart_lane, "depart_lane", n);
                auto a_speed = f64(depart_speed, "depart_speed", n);
                auto a_prio = ints<int8_t>(priority, "priority", n);
                carray<double> a_pos =
                    depart_pos.is_none() ? carray<double>(n) : f64(depart_pos, "depart_pos", n);
                if (depart_pos.is_none()) std::fill(a_pos.mutable_data(), a_pos.mutable_data() + n, -1.0);
                const int64_t first =
                    s.add_vehicles(n, a_dep.data(), a_type.data(), a_off.data(), a_edges.data(),
                                   a_lane.data(), a_speed.data(), a_prio.data(), a_pos.data());
                carray<int64_t> ids(n);
                for (py::ssize_t k = 0; k < n; ++k) ids.mutable_data()[k] = first + k;
                return ids;
            },
            py::arg("depart_s"), py::arg("type"), py::arg("route_offsets"), py::arg("route_edges"),
            py::arg("depart_lane"), py::arg("depart_speed"), py::arg("priority"), py::kw_only(),
            py::arg("depart_pos") = py::none())
        .def(
            "step",
            [](TrafficSim& s, int64_t n) {
                // Safe: the step touches only memory owned by the simulation (its arrays were copied in).
                py::gil_scoped_release release;
                s.step(n);
            },
            py::arg("n") = 1)
        .def(
            "set_edge_closed",
            [](TrafficSim& s, const py::object& edges, bool closed) {
                auto a = ints<int32_t>(edges, "edges");
                s.set_edge_closed(a.size(), a.data(), closed);
            },
            py::arg("edges"), py::arg("closed"))
        .def(
            "set_route",
            [](TrafficSim& s, const py::object& ids, const py::object& route_offsets,
               const py::object& route_edges) {
                auto a_ids = ints<int64_t>(ids, "ids");
                const py::ssize_t k = a_ids.size();
                auto a_off = ints<int64_t>(route_offsets, "route_offsets", k + 1);
                auto a_edges = ints<int32_t>(route_edges, "route_edges");
                if (a_off.data()[k] != a_edges.size()) {
                    throw py::value_error("route_offsets[-1] must equal len(route_edges) = " +
                                          std::to_string(a_edges.size()));
                }
                s.set_route(k, a_ids.data(), a_off.data(), a_edges.data());
            },
            py::arg("ids"), py::arg("route_offsets"), py::arg("route_edges"))
        .def_property_readonly("time", &TrafficSim::time)
        .def_property_readonly("step_count", &TrafficSim::step_count)
        .def_property_readonly("n_vehicles", &TrafficSim::n_vehicles)
        .def_property_readonly("n_types", &TrafficSim::n_types)
        .def_property_readonly("collisions", &TrafficSim::collisions)
        .def_property_readonly("teleports", &TrafficSim::teleports)
        .def_property_readonly("taken_back", &TrafficSim::taken_back)
        .def("teleport_log",
             [](const TrafficSim& s) {
                 py::dict d;
                 d["time"] = copy_vec(s.teleport_time());
                 d["vehicle"] = copy_vec(s.teleport_vehicle());
                 d["from_segment"] = copy_vec(s.teleport_from());
                 d["to_edge"] = copy_vec(s.teleport_to());
                 return d;
             })
        .def("collision_log",
             [](const TrafficSim& s) {
                 py::dict d;
                 d["time"] = copy_vec(s.collision_time());
                 d["vehicle"] = copy_vec(s.collision_vehicle());
                 d["other"] = copy_vec(s.collision_other());
                 d["segment"] = copy_vec(s.collision_segment());
                 return d;
             })
        .def_property_readonly("dt", &TrafficSim::dt)
        .def_property_readonly("seed", &TrafficSim::seed)
        .def_property_readonly("params",
                               [](const TrafficSim& s) {
                                   py::dict d;
                                   for (const auto& kv : s.params()) d[py::str(kv.first)] = kv.second;
                                   return d;
                               })
        .def("counts",
             [](const TrafficSim& s) {
                 int64_t c[3];
                 s.counts(c);
                 py::dict d;
                 d["pending"] = c[0];
                 d["running"] = c[1];
                 d["arrived"] = c[2];
                 return d;
             })
        .def("positions",
             [](const TrafficSim& s) {
                 carray<double> out(std::vector<py::ssize_t>{static_cast<py::ssize_t>(s.n_vehicles()), 2});
                 s.positions(out.mutable_data());
                 return out;
             })
        .def(
            "edge_stats",
            [](TrafficSim& s, bool reset) {
                const py::ssize_t ne = static_cast<py::ssize_t>(s.n_edges());
                carray<int64_t> entered(ne), samples(ne);
                carray<double> speed(ne);
                s.edge_stats(entered.mutable_data(), speed.mutable_data(), samples.mutable_data(), reset);
                py::dict d;
                d["entered"] = entered;
                d["speed_sum"] = speed;
                d["samples"] = samples;
                return d;
            },
            py::arg("reset") = false)
        .def_property_readonly("link_state",
                               [](const TrafficSim& s) {
                                   carray<uint8_t> out(static_cast<py::ssize_t>(s.n_links()));
                                   s.link_states(out.mutable_data());
                                   return out;
                               })
        .def_property_readonly("tls_phase", [](const TrafficSim& s) {
            carray<int32_t> out(static_cast<py::ssize_t>(s.n_tls()));
            s.tls_phases(out.mutable_data());
            return out;
        });
    struct Col {
        const char* name;
        TrafficArray what;
        char kind;  // 'b' int8, 'i' int32, 'd' float64
    };
    const Col cols[] = {
        {"state", TrafficArray::State, 'b'},
        {"lane", TrafficArray::Lane, 'i'},
        {"link", TrafficArray::Link, 'i'},
        {"pos", TrafficArray::Pos, 'd'},
        {"speed", TrafficArray::Speed, 'd'},
        {"route_index", TrafficArray::RouteIndex, 'i'},
        {"depart_time", TrafficArray::DepartTime, 'd'},
        {"arrival_time", TrafficArray::ArrivalTime, 'd'},
        {"time_loss", TrafficArray::TimeLoss, 'd'},
        {"waiting_time", TrafficArray::WaitingTime, 'd'},
        {"distance", TrafficArray::Distance, 'd'},
        {"lane_changes", TrafficArray::LaneChanges, 'i'},
        {"speed_factor", TrafficArray::SpeedFactor, 'd'},
    };
    for (const Col& col : cols) {
        const TrafficArray what = col.what;
        if (col.kind == 'b') {
            cls.def_property_readonly(col.name,
                                      [what](const TrafficSim& s) { return vehicle_array<int8_t>(s, what); });
        } else if (col.kind == 'i') {
            cls.def_property_readonly(
                col.name, [what](const TrafficSim& s) { return vehicle_array<int32_t>(s, what); });
        } else {
            cls.def_property_readonly(col.name,
                                      [what](const TrafficSim& s) { return vehicle_array<double>(s, what); });
        }
    }
}
