// TrafficSim: construction and checks of the network, parameters, vehicle types and vehicles, routes,
// signals, insertion and the sorted lane membership. The per-vehicle kernels (lane changes, car following,
// junctions, movement) are in traffic_step.cpp.
#include "twin/traffic.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <sstream>
#include <stdexcept>
#include <string>

namespace twin {

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

std::string num(double v) {
    std::ostringstream s;
    s << v;
    return s.str();
}

[[noreturn]] void bad(const std::string& msg) { throw std::invalid_argument(msg); }

template <typename T>
void require_size(const std::vector<T>& v, std::size_t n, const char* name, const char* what) {
    if (v.size() != n) {
        bad(std::string(name) + " must have " + what + " = " + std::to_string(n) + " entries, got " +
            std::to_string(v.size()));
    }
}

// CSR offsets: size n + 1, offsets[0] == 0, non-decreasing, offsets[n] == total.
void require_csr(const std::vector<int64_t>& off, std::size_t n, std::size_t total, const char* name,
                 const char* rows) {
    require_size(off, n + 1, name, rows);
    if (off[0] != 0) bad(std::string(name) + "[0] must be 0, got " + std::to_string(off[0]));
    for (std::size_t i = 0; i < n; ++i) {
        if (off[i + 1] < off[i]) {
            bad(std::string(name) + " must be non-decreasing, found " + std::to_string(off[i + 1]) +
                " after " + std::to_string(off[i]) + " at index " + std::to_string(i + 1));
        }
    }
    if (static_cast<std::size_t>(off[n]) != total) {
        bad(std::string(name) + "[-1] must equal the number of values " + std::to_string(total) + ", got " +
            std::to_string(off[n]));
    }
}

void require_range(const std::vector<int32_t>& v, int64_t lo, int64_t hi, const char* name) {
    for (std::size_t i = 0; i < v.size(); ++i) {
        if (v[i] < lo || v[i] >= hi) {
            bad(std::string(name) + " must be in [" + std::to_string(lo) + ", " + std::to_string(hi) +
                "), found " + std::to_string(v[i]) + " at index " + std::to_string(i));
        }
    }
}

void require_positive(const std::vector<double>& v, const char* name, bool allow_zero = false) {
    for (std::size_t i = 0; i < v.size(); ++i) {
        if (!std::isfinite(v[i]) || (allow_zero ? v[i] < 0 : v[i] <= 0)) {
            bad(std::string(name) + " must be finite and " + (allow_zero ? ">= 0" : "> 0") + ", found " +
                num(v[i]) + " at index " + std::to_string(i));
        }
    }
}

bool valid_state_char(uint8_t c) {
    return c == 'G' || c == 'g' || c == 'y' || c == 'Y' || c == 'r' || c == 'u' || c == 'o' || c == 'O' ||
           c == 's';
}

inline uint64_t splitmix64(uint64_t x) {
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

// Counter-based uniform number in (0, 1) from (seed, vehicle id, counter).
inline double uniform01(uint64_t seed, uint64_t id, uint64_t counter) {
    const uint64_t h = splitmix64(seed ^ splitmix64(id ^ splitmix64(counter + 0x7A3C1E5B9D2F4861ull)));
    return (static_cast<double>(h >> 11) + 0.5) * 0x1.0p-53;
}

const std::vector<TrafficParam> kParams = {
    {"lookahead", 100.0,
     "m: leaders, stop lines and speed limits are searched this far beyond the braking distance v^2 / (2 b)"},
    {"idm_stepping", 0.25,
     "s: internal Euler step of the IDM speed update (SUMO's IDM default 'stepping'); dt is split into "
     "round(dt / idm_stepping) iterations with the leader's speed held"},
    {"critical_gap", 3.0,
     "s: a vehicle on a yielding link waits while a foe (with right of way) would reach the junction within "
     "this time, or occupies the junction"},
    {"min_critical_gap", 1.0, "s: the critical gap never falls below this however long a vehicle waited"},
    {"impatience", 0.05,
     "s of critical gap given up per s of waiting at the stop line (like SUMO's impatience, which lets "
     "waiting vehicles accept smaller gaps)"},
    {"lc_politeness", 0.2, "p of MOBIL (Kesting, Treiber & Helbing 2007)"},
    {"lc_threshold", 0.1, "m/s^2: MOBIL's switching threshold"},
    {"lc_safe_decel", 4.0, "m/s^2: MOBIL's safe braking of the new follower (and of the changer)"},
    {"lc_bias_right", 0.2,
     "m/s^2: keep-right bias: changes to the right need this much less advantage, to the left this much "
     "more"},
    {"lc_cooldown", 1.0, "s: no second lane change by the same vehicle within this time"},
    {"lc_interval", 1.0,
     "s: each vehicle evaluates MOBIL about once in this time (strategic changes: every step)"},
    {"keep_clear", 1.0,
     "1: a vehicle does not enter a junction while the lane it leads to has no room for it (its last vehicle "
     "stands within the entering vehicle's length + minGap of the lane start); 0: off"},
    {"stop_speed", 0.1, "m/s: below this speed a vehicle counts as waiting (SUMO's waiting time threshold)"},
    {"strategic_urgency", 200.0,
     "m: a vehicle in a lane without a link to its next edge accepts up to its comfortable decel (instead of "
     "lc_safe_decel) for itself and its new follower when closer than this to the lane end"},
    {"startup_delay", 1.0,
     "s: a standing vehicle with no vehicle ahead of it within the lookahead (the head of a queue, released "
     "by a "
     "light or a gap) starts this long after it could (driver reaction, like SUMO's vType startupDelay; the "
     "vehicles behind start with their leader as the IDM has them). Plain IDM (0) discharges a queue at "
     "1,800-1,850 veh/h but with a start-up lost time of only 0.7-0.9 s; 1 s, a typical reaction time "
     "(0.6-1.4 s, Treiber & Kesting 2013), gives about 2 s as observed (HCM)"},
    {"actuated_max_gap", 3.0,
     "s: an actuated green phase (min_dur < max_dur) ends after min_dur once no vehicle has been at any of "
     "its "
     "detectors for this long, or at max_dur (SUMO's actuated max-gap)"},
    {"actuated_detector_gap", 2.0,
     "s: detectors of actuated signals lie this far (in travel time at the lane's speed limit) before the "
     "stop "
     "line of each lane with a green link in the phase (SUMO's detector-gap; at the lane start if shorter)"},
    {"emergency_red_speed", 4.0,
     "m/s: emergency vehicles (priority 1) pass red lights and yield signs no faster than this, and only "
     "when "
     "no conflicting vehicle is in or about to enter the junction (like SUMO's bluelight device)"},
    {"emergency_yield_time", 5.0,
     "s: vehicles do not enter a junction on a link conflicting with one that an emergency vehicle will "
     "reach "
     "within this time (arrival estimated at its current speed, at least 1 m/s)"},
    {"emergency_yield_distance", 100.0,
     "m: vehicles up to this far ahead of an emergency vehicle in its rescue lane (the leftmost lane from "
     "which "
     "its route goes on) move out of it, to the right (from the rightmost lane: to the left), when the gap "
     "is "
     "safe; their new followers slow down to let them in"},
    {"parallel_min", 2048.0,
     "vehicles: with fewer running vehicles the step runs on one thread (thread barriers cost more than they "
     "save); results are the same for any value"},
    {"best_lanes_horizon", 3000.0,
     "m: lane choice looks this far along the route for the lanes that lead on without a lane change (SUMO's "
     "bestLanes look-ahead, 3000 m), so that vehicles reach the right lane before a run of short edges"},
    {"time_to_teleport", 300.0,
     "s: a vehicle at the head of its lane or junction path that has stood this long is moved to the next "
     "edge "
     "of its route with room (or leaves at its route's end), counted as a teleport (SUMO's time-to-teleport, "
     "300 s); 0: never"},
};

double* param_slot(TrafficSim::Params& p, const std::string& name) {
    if (name == "lookahead") return &p.lookahead;
    if (name == "idm_stepping") return &p.idm_stepping;
    if (name == "critical_gap") return &p.critical_gap;
    if (name == "min_critical_gap") return &p.min_critical_gap;
    if (name == "impatience") return &p.impatience;
    if (name == "lc_politeness") return &p.lc_politeness;
    if (name == "lc_threshold") return &p.lc_threshold;
    if (name == "lc_safe_decel") return &p.lc_safe_decel;
    if (name == "lc_bias_right") return &p.lc_bias_right;
    if (name == "lc_cooldown") return &p.lc_cooldown;
    if (name == "lc_interval") return &p.lc_interval;
    if (name == "keep_clear") return &p.keep_clear;
    if (name == "stop_speed") return &p.stop_speed;
    if (name == "strategic_urgency") return &p.strategic_urgency;
    if (name == "startup_delay") return &p.startup_delay;
    if (name == "actuated_max_gap") return &p.actuated_max_gap;
    if (name == "actuated_detector_gap") return &p.actuated_detector_gap;
    if (name == "emergency_red_speed") return &p.emergency_red_speed;
    if (name == "emergency_yield_time") return &p.emergency_yield_time;
    if (name == "emergency_yield_distance") return &p.emergency_yield_distance;
    if (name == "parallel_min") return &p.parallel_min;
    if (name == "best_lanes_horizon") return &p.best_lanes_horizon;
    if (name == "time_to_teleport") return &p.time_to_teleport;
    return nullptr;
}

}  // namespace

const std::vector<TrafficParam>& traffic_default_params() { return kParams; }

TrafficSim::TrafficSim(TrafficNetwork net, double dt, uint64_t seed,
                       const std::vector<std::pair<std::string, double>>& params)
    : net_(std::move(net)), dt_(dt), seed_(seed) {
    if (!(std::isfinite(dt) && dt > 0 && dt <= 10.0)) {
        bad("dt must be a number in (0, 10] seconds, got " + num(dt));
    }
    for (const TrafficParam& d : kParams) *param_slot(p_, d.name) = d.value;
    for (const auto& kv : params) {
        double* slot = param_slot(p_, kv.first);
        if (!slot) {
            std::string known;
            for (const TrafficParam& d : kParams) known += (known.empty() ? "" : ", ") + std::string(d.name);
            bad("unknown traffic parameter '" + kv.first + "'; known: " + known);
        }
        if (!std::isfinite(kv.second) || kv.second < 0) {
            bad("parameter '" + kv.first + "' must be a finite number >= 0, got " + num(kv.second));
        }
        *slot = kv.second;
    }
    if (!(p_.idm_stepping > 0)) bad("parameter 'idm_stepping' must be > 0");
    if (p_.min_critical_gap > p_.critical_gap) bad("parameter 'min_critical_gap' must be <= critical_gap");
    for (const TrafficParam& d : kParams) param_list_.emplace_back(d.name, *param_slot(p_, d.name));
    idm_iters_ = std::max(1, static_cast<int>(dt_ / p_.idm_stepping + 0.5));
    if (!(p_.emergency_red_speed > 0)) bad("parameter 'emergency_red_speed' must be > 0");
    par_min_ = static_cast<int64_t>(std::min(p_.parallel_min, 1e15));

    const TrafficNetwork& n = net_;
    // Lanes and edges.
    const std::size_t nl = n.lane_edge.size();
    const std::size_t ne = n.edge_length.size();
    if (nl == 0) bad("lane_edge must have at least one lane");
    if (nl >= static_cast<std::size_t>(std::numeric_limits<int32_t>::max() / 2)) bad("too many lanes");
    require_size(n.lane_index, nl, "lane_index", "nl");
    require_size(n.lane_length, nl, "lane_length", "nl");
    require_size(n.lane_speed, nl, "lane_speed", "nl");
    require_size(n.lane_allow, nl, "lane_allow_passenger", "nl");
    require_positive(n.lane_length, "lane_length");
    require_positive(n.lane_speed, "lane_speed");
    require_range(n.lane_edge, 0, static_cast<int64_t>(ne), "lane_edge");
    require_csr(n.edge_lane_offsets, ne, nl, "edge_lane_offsets", "ne + 1");
    require_positive(n.edge_length, "edge_length", true);
    for (std::size_t e = 0; e < ne; ++e) {
        if (n.edge_lane_offsets[e + 1] == n.edge_lane_offsets[e]) {
            bad("edge_lane_offsets: edge " + std::to_string(e) + " has no lanes");
        }
        for (int64_t l = n.edge_lane_offsets[e]; l < n.edge_lane_offsets[e + 1]; ++l) {
            if (n.lane_edge[l] != static_cast<int32_t>(e) || n.lane_index[l] != l - n.edge_lane_offsets[e]) {
                bad("lane_edge / lane_index disagree with edge_lane_offsets at lane " + std::to_string(l) +
                    ": expected edge " + std::to_string(e) + " index " +
                    std::to_string(l - n.edge_lane_offsets[e]) + ", got edge " +
                    std::to_string(n.lane_edge[l]) + " index " + std::to_string(n.lane_index[l]));
            }
        }
    }
    if (n.lane_shape_xy.size() % 2 != 0) bad("lane_shape_xy must be (p, 2)");
    require_csr(n.lane_shape_offsets, nl, n.lane_shape_xy.size() / 2, "lane_shape_offsets", "nl + 1");
    for (std::size_t l = 0; l < nl; ++l) {
        if (n.lane_shape_offsets[l + 1] - n.lane_shape_offsets[l] < 2) {
            bad("lane_shape_offsets: lane " + std::to_string(l) + " has fewer than 2 shape points");
        }
    }
    for (std::size_t k = 0; k < n.lane_shape_xy.size(); ++k) {
        if (!std::isfinite(n.lane_shape_xy[k])) {
            bad("lane_shape_xy must be finite, found a non-finite value at flat index " + std::to_string(k));
        }
    }
    // Links.
    const std::size_t nk = n.link_from_lane.size();
    require_size(n.link_to_lane, nk, "link_to_lane", "nk");
    require_size(n.link_length, nk, "link_length", "nk");
    require_size(n.link_speed, nk, "link_speed", "nk");
    require_size(n.link_dir, nk, "link_dir", "nk");
    require_size(n.link_junction, nk, "link_junction", "nk");
    require_size(n.link_tls, nk, "link_tls", "nk");
    require_size(n.link_tls_index, nk, "link_tls_index", "nk");
    require_size(n.link_major, nk, "link_major", "nk");
    require_range(n.link_from_lane, 0, static_cast<int64_t>(nl), "link_from_lane");
    require_range(n.link_to_lane, 0, static_cast<int64_t>(nl), "link_to_lane");
    require_positive(n.link_length, "link_length");
    require_positive(n.link_speed, "link_speed");
    require_csr(n.link_foe_offsets, nk, n.link_foes.size(), "link_foe_offsets", "nk + 1");
    require_range(n.link_foes, 0, static_cast<int64_t>(nk), "link_foes");
    require_csr(n.lane_link_offsets, nl, n.lane_links.size(), "lane_link_offsets", "nl + 1");
    require_range(n.lane_links, 0, static_cast<int64_t>(nk), "lane_links");
    for (std::size_t l = 0; l < nl; ++l) {
        for (int64_t j = n.lane_link_offsets[l]; j < n.lane_link_offsets[l + 1]; ++j) {
            if (n.link_from_lane[n.lane_links[j]] != static_cast<int32_t>(l)) {
                bad("lane_links: link " + std::to_string(n.lane_links[j]) + " is listed under lane " +
                    std::to_string(l) + " but link_from_lane says " +
                    std::to_string(n.link_from_lane[n.lane_links[j]]));
            }
        }
    }
    // Signals.
    const std::size_t nt = n.tls_offset.size();
    const std::size_t np = n.phase_duration.size();
    require_size(n.tls_actuated, nt, "tls_actuated", "nt");
    require_csr(n.tls_phase_offsets, nt, np, "tls_phase_offsets", "nt + 1");
    require_size(n.phase_min, np, "phase_min", "np");
    require_size(n.phase_max, np, "phase_max", "np");
    require_positive(n.phase_duration, "phase_duration");
    require_csr(n.phase_state_offsets, np, n.phase_state.size(), "phase_state_offsets", "np + 1");
    for (std::size_t k = 0; k < n.phase_state.size(); ++k) {
        if (!valid_state_char(n.phase_state[k])) {
            bad("phase_state must hold SUMO signal characters (G g y r u o O s), found code " +
                std::to_string(n.phase_state[k]) + " at index " + std::to_string(k));
        }
    }
    for (std::size_t ph = 0; ph < np; ++ph) {
        if (!std::isfinite(n.phase_min[ph]) || !std::isfinite(n.phase_max[ph]) || n.phase_min[ph] < 0 ||
            n.phase_max[ph] < n.phase_min[ph]) {
            bad("phase_min / phase_max must be finite with 0 <= phase_min <= phase_max, found " +
                num(n.phase_min[ph]) + ", " + num(n.phase_max[ph]) + " at phase " + std::to_string(ph));
        }
    }
    for (std::size_t t = 0; t < nt; ++t) {
        if (!std::isfinite(n.tls_offset[t])) bad("tls_offset must be finite at index " + std::to_string(t));
        if (n.tls_phase_offsets[t + 1] == n.tls_phase_offsets[t]) {
            bad("tls_phase_offsets: programme " + std::to_string(t) + " has no phases");
        }
    }
    require_range(n.link_tls, -1, static_cast<int64_t>(nt), "link_tls");
    for (std::size_t k = 0; k < nk; ++k) {
        const int32_t t = n.link_tls[k];
        if (t < 0) continue;
        for (int64_t ph = n.tls_phase_offsets[t]; ph < n.tls_phase_offsets[t + 1]; ++ph) {
            const int64_t len = n.phase_state_offsets[ph + 1] - n.phase_state_offsets[ph];
            if (n.link_tls_index[k] < 0 || n.link_tls_index[k] >= len) {
                bad("link_tls_index of link " + std::to_string(k) + " is " +
                    std::to_string(n.link_tls_index[k]) + " but phase " + std::to_string(ph) +
                    " of programme " + std::to_string(t) + " has " + std::to_string(len) +
                    " state characters");
            }
        }
    }

    nl_ = static_cast<int32_t>(nl);
    ne_ = static_cast<int32_t>(ne);
    nk_ = static_cast<int32_t>(nk);
    nt_ = static_cast<int32_t>(nt);
    nseg_ = nl_ + nk_;
    seg_len_.resize(nseg_);
    seg_speed_.resize(nseg_);
    for (int32_t l = 0; l < nl_; ++l) {
        seg_len_[l] = n.lane_length[l];
        seg_speed_[l] = n.lane_speed[l];
    }
    for (int32_t k = 0; k < nk_; ++k) {
        seg_len_[nl_ + k] = n.link_length[k];
        seg_speed_[nl_ + k] = n.link_speed[k];
    }
    // Incoming links per lane.
    lane_in_offsets_.assign(nl_ + 1, 0);
    for (int32_t k = 0; k < nk_; ++k) ++lane_in_offsets_[n.link_to_lane[k] + 1];
    for (int32_t l = 0; l < nl_; ++l) lane_in_offsets_[l + 1] += lane_in_offsets_[l];
    lane_in_links_.resize(nk_);
    {
        std::vector<int64_t> fill(lane_in_offsets_.begin(), lane_in_offsets_.end() - 1);
        for (int32_t k = 0; k < nk_; ++k) lane_in_links_[fill[n.link_to_lane[k]]++] = k;
    }
    edge_closed_.assign(ne_, 0);
    tls_cycle_.resize(nt_);
    for (int32_t t = 0; t < nt_; ++t) {
        double c = 0;
        for (int64_t ph = n.tls_phase_offsets[t]; ph < n.tls_phase_offsets[t + 1]; ++ph)
            c += n.phase_duration[ph];
        tls_cycle_[t] = c;
    }
    tls_phase_.assign(nt_, 0);
    tls_start_.assign(nt_, 0.0);
    link_state_.assign(nk_, 'M');
    // Actuated phases (min < max in an actuated programme) and their detector lanes: the from-lanes of the
    // links green ('G', 'g') in the phase.
    const std::size_t np_all = n.phase_duration.size();
    phase_act_.assign(np_all, 0);
    det_phase_offsets_.assign(np_all + 1, 0);
    det_pos_.assign(nl_, kNaN);
    det_last_.assign(nl_, -kInf);
    {
        std::vector<std::vector<int32_t>> links_of(nt_);
        for (int32_t k = 0; k < nk_; ++k) {
            if (n.link_tls[k] >= 0) links_of[n.link_tls[k]].push_back(k);
        }
        std::vector<int32_t> lanes;
        for (int32_t t = 0; t < nt_; ++t) {
            for (int64_t ph = n.tls_phase_offsets[t]; ph < n.tls_phase_offsets[t + 1]; ++ph) {
                lanes.clear();
                if (n.tls_actuated[t] && n.phase_min[ph] < n.phase_max[ph]) {
                    phase_act_[ph] = 1;
                    for (int32_t k : links_of[t]) {
                        const uint8_t c = n.phase_state[n.phase_state_offsets[ph] + n.link_tls_index[k]];
                        if (c == 'G' || c == 'g') lanes.push_back(n.link_from_lane[k]);
                    }
                    std::sort(lanes.begin(), lanes.end());
                    lanes.erase(std::unique(lanes.begin(), lanes.end()), lanes.end());
                }
                det_phase_lanes_.insert(det_phase_lanes_.end(), lanes.begin(), lanes.end());
                det_phase_offsets_[ph + 1] = static_cast<int64_t>(det_phase_lanes_.size());
            }
        }
        for (int32_t l : det_phase_lanes_) {
            if (std::isnan(det_pos_[l])) {
                det_pos_[l] = std::max(0.0, n.lane_length[l] - p_.actuated_detector_gap * n.lane_speed[l]);
                det_lanes_.push_back(l);
            }
        }
        std::sort(det_lanes_.begin(), det_lanes_.end());
    }
    // Symmetric conflicts (for emergency vehicles, who may take any link regardless of priority).
    {
        std::vector<std::vector<int32_t>> conf(nk_);
        for (int32_t k = 0; k < nk_; ++k) {
            for (int64_t a = n.link_foe_offsets[k]; a < n.link_foe_offsets[k + 1]; ++a) {
                const int32_t f = n.link_foes[a];
                if (f == k) continue;
                conf[k].push_back(f);
                conf[f].push_back(k);
            }
        }
        conf_offsets_.assign(nk_ + 1, 0);
        for (int32_t k = 0; k < nk_; ++k) {
            std::sort(conf[k].begin(), conf[k].end());
            conf[k].erase(std::unique(conf[k].begin(), conf[k].end()), conf[k].end());
            conf_links_.insert(conf_links_.end(), conf[k].begin(), conf[k].end());
            conf_offsets_[k + 1] = static_cast<int64_t>(conf_links_.size());
        }
    }
    claim_.assign(nk_, kInf);
    wait_pos_.assign(nk_, -1.0);
    for (int32_t k = 0; k < nk_; ++k) {
        const uint8_t d = n.link_dir[k];
        if (n.link_tls[k] >= 0 && (d == 'l' || d == 'L') && n.link_length[k] >= 10.0 &&
            n.link_foe_offsets[k + 1] > n.link_foe_offsets[k]) {
            wait_pos_[k] = 0.5 * n.link_length[k];
        }
    }
    // Initial phases: as fixed-time programmes at time 0 (actuated programmes run on from there).
    for (int32_t t = 0; t < nt_; ++t) {
        double c = std::fmod(0.0 - n.tls_offset[t], tls_cycle_[t]);
        if (c < 0) c += tls_cycle_[t];
        int64_t ph = n.tls_phase_offsets[t];
        while (ph < n.tls_phase_offsets[t + 1] - 1 && c >= n.phase_duration[ph] - 1e-9) {
            c -= n.phase_duration[ph];
            ++ph;
        }
        tls_phase_[t] = static_cast<int32_t>(ph);
        tls_start_[t] = -c;
    }
    edge_queue_.resize(ne_);
    edge_queue_head_.assign(ne_, 0);
    seg_start_.assign(nseg_ + 1, 0);
    seg_fill_.assign(nseg_ + 1, 0);
    stat_entered_.assign(ne_, 0);
    stat_samples_.assign(ne_, 0);
    stat_speed_.assign(ne_, 0.0);
    update_signals();
}

int32_t TrafficSim::add_vehicle_types(int64_t t, const double* length, const double* min_gap,
                                      const double* accel, const double* decel, const double* emergency_decel,
                                      const double* tau, const double* max_speed, const double* speed_factor,
                                      const double* speed_dev, const double* delta) {
    struct Check {
        const double* v;
        const char* name;
        bool zero_ok;
    };
    const Check checks[] = {{length, "length", false},
                            {min_gap, "min_gap", true},
                            {accel, "accel", false},
                            {decel, "decel", false},
                            {emergency_decel, "emergency_decel", false},
                            {tau, "tau", false},
                            {max_speed, "max_speed", false},
                            {speed_factor, "speed_factor", false},
                            {speed_dev, "speed_dev", true},
                            {delta, "delta", false}};
    for (int64_t k = 0; k < t; ++k) {
        for (const Check& c : checks) {
            if (!std::isfinite(c.v[k]) || (c.zero_ok ? c.v[k] < 0 : c.v[k] <= 0)) {
                bad(std::string(c.name) + " must be finite and " + (c.zero_ok ? ">= 0" : "> 0") + ", found " +
                    num(c.v[k]) + " at index " + std::to_string(k));
            }
        }
        if (emergency_decel[k] < decel[k]) {
            bad("emergency_decel must be >= decel, found " + num(emergency_decel[k]) + " < " + num(decel[k]) +
                " at index " + std::to_string(k));
        }
    }
    const int32_t first = static_cast<int32_t>(types_.size());
    for (int64_t k = 0; k < t; ++k) {
        types_.push_back({length[k], min_gap[k], accel[k], decel[k], emergency_decel[k], tau[k], max_speed[k],
                          speed_factor[k], speed_dev[k], delta[k]});
    }
    return first;
}

bool TrafficSim::lane_reaches(int32_t lane, int32_t edge) const {
    for (int64_t j = net_.lane_link_offsets[lane]; j < net_.lane_link_offsets[lane + 1]; ++j) {
        const int32_t to = net_.link_to_lane[net_.lane_links[j]];
        if (net_.lane_edge[to] == edge && net_.lane_allow[to]) return true;
    }
    return false;
}

bool TrafficSim::edges_connected(int32_t a, int32_t b) const {
    for (int64_t l = net_.edge_lane_offsets[a]; l < net_.edge_lane_offsets[a + 1]; ++l) {
        if (net_.lane_allow[l] && lane_reaches(static_cast<int32_t>(l), b)) return true;
    }
    return false;
}

void TrafficSim::grow(int64_t n) {
    const std::size_t m = static_cast<std::size_t>(n);
    vp_.resize(m);
    depart_s_.resize(m);
    depart_speed_.resize(m);
    depart_pos_.resize(m);
    route_size_.resize(m);
    depart_lane_.resize(m);
    route_begin_.resize(m);
    priority_.resize(m);
    state_.resize(m, kVehPending);
    for (int b = 0; b < 2; ++b) {
        seg_[b].resize(m, -1);
        next_link_[b].resize(m, -1);
        pos_[b].resize(m, 0.0);
        speed_[b].resize(m, 0.0);
        go_[b].resize(m, 0);
    }
    pre_link_.resize(m, -1);
    pre_go_.resize(m, 0);
    pre_careful_.resize(m, 0);
    undo_ri_.resize(m, 0);
    undo_link_.resize(m, -1);
    last_link_.resize(m, -1);
    undo_acc_.resize(m * 4, 0.0);
    route_idx_.resize(m, 0);
    lane_changes_.resize(m, 0);
    depart_time_.resize(m, kNaN);
    arrival_time_.resize(m, kNaN);
    time_loss_.resize(m, 0.0);
    waiting_time_.resize(m, 0.0);
    distance_.resize(m, 0.0);
    last_lc_.resize(m, -kInf);
    wait_.resize(m, 0.0);
    start_wait_.resize(m, 0.0);
    lc_target_.resize(m, 0);
    lc_want_.resize(m, 0);
    plan_lane_.resize(m, -1);
    plan_ri_.resize(m, -1);
    plan_link_.resize(m, -1);
    plan_want_.resize(m, -1);
    plan_score_.resize(m, 0);
    chain_ri_.resize(m * kChain, -1);
    chain_lane_.resize(m * kChain, -1);
    chain_link_.resize(m * kChain, -1);
    plan_reach_.resize(m * kPlanLanes, 0);
    plan_end_.resize(m, kInf);
    plan_lane_end_.resize(m * kPlanLanes, kInf);
    collided_.resize(m, 0);
    entered_.resize(m, 0);
    rescue_lane_.resize(m, -1);
    yield_dir_.resize(m, 0);
    avoid_lane_.resize(m, -1);
    careful_.resize(m, 0);
    rank_.resize(m, -1);
    order_.reserve(m);
    order_tmp_.reserve(m);
}

int64_t TrafficSim::add_vehicles(int64_t n, const double* depart_s, const int32_t* type,
                                 const int64_t* route_offsets, const int32_t* route_edges,
                                 const int32_t* depart_lane, const double* depart_speed,
                                 const int8_t* priority, const double* depart_pos) {
    if (n < 0) bad("n must be >= 0");
    if (route_offsets[0] != 0) bad("route_offsets[0] must be 0, got " + std::to_string(route_offsets[0]));
    for (int64_t i = 0; i < n; ++i) {
        const std::string at = " (vehicle index " + std::to_string(i) + ")";
        if (!std::isfinite(depart_s[i])) bad("depart_s must be finite" + at);
        if (type[i] < 0 || type[i] >= static_cast<int32_t>(types_.size())) {
            bad("type " + std::to_string(type[i]) + " is not a vehicle type id (" +
                std::to_string(types_.size()) + " types added)" + at);
        }
        if (route_offsets[i + 1] <= route_offsets[i]) bad("route_offsets: empty or decreasing route" + at);
        for (int64_t r = route_offsets[i]; r < route_offsets[i + 1]; ++r) {
            if (route_edges[r] < 0 || route_edges[r] >= ne_) {
                bad("route_edges: edge " + std::to_string(route_edges[r]) + " out of range [0, " +
                    std::to_string(ne_) + ")" + at);
            }
            if (r > route_offsets[i] && !edges_connected(route_edges[r - 1], route_edges[r])) {
                bad("route_edges: no link from edge " + std::to_string(route_edges[r - 1]) + " to edge " +
                    std::to_string(route_edges[r]) + at);
            }
        }
        const int32_t e0 = route_edges[route_offsets[i]];
        const int64_t nlanes = net_.edge_lane_offsets[e0 + 1] - net_.edge_lane_offsets[e0];
        if (depart_lane[i] < -1 || depart_lane[i] >= nlanes) {
            bad("depart_lane " + std::to_string(depart_lane[i]) + " must be -1 or a lane index of edge " +
                std::to_string(e0) + " (0.." + std::to_string(nlanes - 1) + ")" + at);
        }
        if (depart_lane[i] >= 0 && !net_.lane_allow[net_.edge_lane_offsets[e0] + depart_lane[i]]) {
            bad("depart_lane " + std::to_string(depart_lane[i]) + " of edge " + std::to_string(e0) +
                " does not allow passenger cars" + at);
        }
        if (!std::isfinite(depart_speed[i])) bad("depart_speed must be finite (-1: max)" + at);
        if (priority[i] != 0 && priority[i] != 1) bad("priority must be 0 or 1" + at);
        if (!std::isfinite(depart_pos[i])) bad("depart_pos must be finite (-1: base)" + at);
        if (depart_pos[i] >= 0) {
            for (int64_t l = net_.edge_lane_offsets[e0]; l < net_.edge_lane_offsets[e0 + 1]; ++l) {
                if (depart_pos[i] > net_.lane_length[l]) {
                    bad("depart_pos " + num(depart_pos[i]) + " is beyond the end of lane " +
                        std::to_string(l) + at);
                }
            }
        }
    }
    const int64_t first = n_;
    grow(n_ + n);
    const int64_t base = static_cast<int64_t>(routes_.size());
    routes_.insert(routes_.end(), route_edges, route_edges + route_offsets[n]);
    for (int64_t i = 0; i < n; ++i) {
        const int64_t id = first + i;
        const Type& t = types_[type[i]];
        double f = t.speed_factor;
        if (t.speed_dev > 0) {
            // SUMO's normc(mean, dev, 0.2, 2.0): a normal draw, redrawn until within the bounds (then
            // clipped).
            double x = t.speed_factor;
            for (uint64_t c = 0; c < 64; c += 2) {
                const double u1 = uniform01(seed_, static_cast<uint64_t>(id), c);
                const double u2 = uniform01(seed_, static_cast<uint64_t>(id), c + 1);
                const double z = std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * 3.14159265358979323846 * u2);
                x = t.speed_factor * (1.0 + t.speed_dev * z);
                if (x >= 0.2 * t.speed_factor && x <= 2.0 * t.speed_factor) break;
            }
            f = std::min(2.0 * t.speed_factor, std::max(0.2 * t.speed_factor, x));
        }
        Veh& v = vp_[id];
        v.length = t.length;
        v.min_gap = t.min_gap;
        v.accel = t.accel;
        v.decel = t.decel;
        v.emergency_decel = t.emergency_decel;
        v.tau = t.tau;
        v.vmax = t.max_speed;
        v.factor = f;
        v.delta = t.delta;
        v.two_sqrt_ab = 2.0 * std::sqrt(t.accel * t.decel);
        depart_s_[id] = depart_s[i];
        depart_speed_[id] = depart_speed[i];
        depart_pos_[id] = depart_pos[i];
        depart_lane_[id] = depart_lane[i];
        route_begin_[id] = base + route_offsets[i];
        route_size_[id] = static_cast<int32_t>(route_offsets[i + 1] - route_offsets[i]);
        priority_[id] = priority[i];
        if (priority[i]) emerg_ids_.push_back(id);
    }
    n_ += n;
    insert_dirty_ = true;
    // Pending list: the not yet queued tail stays sorted by (depart, id).
    for (int64_t i = 0; i < n; ++i) pending_.push_back(first + i);
    std::stable_sort(pending_.begin() + static_cast<std::ptrdiff_t>(pending_next_), pending_.end(),
                     [this](int64_t a, int64_t b) { return depart_s_[a] < depart_s_[b]; });
    return first;
}

void TrafficSim::set_edge_closed(int64_t k, const int32_t* edges, bool closed) {
    for (int64_t j = 0; j < k; ++j) {
        if (edges[j] < 0 || edges[j] >= ne_) {
            bad("edges: edge " + std::to_string(edges[j]) + " out of range [0, " + std::to_string(ne_) +
                ") at index " + std::to_string(j));
        }
    }
    for (int64_t j = 0; j < k; ++j) edge_closed_[edges[j]] = closed ? 1 : 0;
    insert_dirty_ = true;
}

void TrafficSim::set_route(int64_t k, const int64_t* ids, const int64_t* route_offsets,
                           const int32_t* route_edges) {
    if (route_offsets[0] != 0) bad("route_offsets[0] must be 0, got " + std::to_string(route_offsets[0]));
    for (int64_t j = 0; j < k; ++j) {
        const std::string at = " (index " + std::to_string(j) + ")";
        const int64_t id = ids[j];
        if (id < 0 || id >= n_) bad("ids: vehicle " + std::to_string(id) + " does not exist" + at);
        if (state_[id] == kVehArrived) bad("ids: vehicle " + std::to_string(id) + " has arrived" + at);
        if (route_offsets[j + 1] <= route_offsets[j]) bad("route_offsets: empty or decreasing route" + at);
        for (int64_t r = route_offsets[j]; r < route_offsets[j + 1]; ++r) {
            if (route_edges[r] < 0 || route_edges[r] >= ne_) bad("route_edges: edge out of range" + at);
            if (r > route_offsets[j] && !edges_connected(route_edges[r - 1], route_edges[r])) {
                bad("route_edges: no link from edge " + std::to_string(route_edges[r - 1]) + " to edge " +
                    std::to_string(route_edges[r]) + at);
            }
        }
        const int32_t cur_edge = routes_[route_begin_[id] + route_idx_[id]];
        if (route_edges[route_offsets[j]] != cur_edge) {
            bad("route of vehicle " + std::to_string(id) + " must start with its current edge " +
                std::to_string(cur_edge) + ", got " + std::to_string(route_edges[route_offsets[j]]) + at);
        }
        const int32_t s = seg_[cur_][id];
        if (state_[id] == kVehRunning && s >= nl_) {  // inside a junction: the route must continue over it
            const int32_t to_edge = net_.lane_edge[net_.link_to_lane[s - nl_]];
            if (route_offsets[j + 1] - route_offsets[j] < 2 || route_edges[route_offsets[j] + 1] != to_edge) {
                bad("vehicle " + std::to_string(id) + " is inside a junction towards edge " +
                    std::to_string(to_edge) + ": its new route must continue with that edge" + at);
            }
        }
    }
    for (int64_t j = 0; j < k; ++j) {
        const int64_t id = ids[j];
        route_begin_[id] = static_cast<int64_t>(routes_.size());
        route_size_[id] = static_cast<int32_t>(route_offsets[j + 1] - route_offsets[j]);
        route_idx_[id] = 0;
        plan_lane_[id] = -1;
        routes_.insert(routes_.end(), route_edges + route_offsets[j], route_edges + route_offsets[j + 1]);
        if (state_[id] == kVehRunning && seg_[cur_][id] < nl_) {
            next_link_[cur_][id] = choose_link(seg_[cur_][id], id, 0);
        }
    }
}

void TrafficSim::detect(double t) {
    // An induction loop at det_pos_ on each detector lane: occupied now, or passed over during the last step
    // (the vehicle's rear was behind it a step ago), counts as a detection at time t.
    const int c = cur_;
    const int64_t* ord = order_.data();
    for (int32_t l : det_lanes_) {
        const double x = det_pos_[l];
        int32_t lo = seg_begin(l), hi = seg_end(l);  // first vehicle with its front at or beyond the detector
        while (lo < hi) {
            const int32_t mid = (lo + hi) / 2;
            if (pos_[c][ord[mid]] >= x) {
                hi = mid;
            } else {
                lo = mid + 1;
            }
        }
        if (lo == seg_end(l)) continue;
        const int64_t j = ord[lo];
        if (pos_[c][j] - vp_[j].length - speed_[c][j] * dt_ <= x) det_last_[l] = t;
    }
}

void TrafficSim::update_signals() {
    const double t = time();
    if (!det_lanes_.empty()) detect(t);
    for (int32_t s = 0; s < nt_; ++s) {
        const int64_t first = net_.tls_phase_offsets[s], last = net_.tls_phase_offsets[s + 1] - 1;
        if (net_.tls_actuated[s]) {
            // Actuated: phases end one after the other at their end time: fixed phases after their duration,
            // actuated ones after min_dur once the gap since the last detection on their lanes exceeds
            // actuated_max_gap, at the latest after max_dur. The end time is exact (not rounded to steps).
            for (int64_t guard = 0; guard <= last - first + 1; ++guard) {
                const int32_t ph = tls_phase_[s];
                const double start = tls_start_[s];
                double end;
                if (phase_act_[ph]) {
                    double seen = -kInf;
                    for (int64_t a = det_phase_offsets_[ph]; a < det_phase_offsets_[ph + 1]; ++a) {
                        seen = std::max(seen, det_last_[det_phase_lanes_[a]]);
                    }
                    end = std::min(start + net_.phase_max[ph],
                                   std::max(start + net_.phase_min[ph], seen + p_.actuated_max_gap));
                } else {
                    end = start + net_.phase_duration[ph];
                }
                if (end > t + 1e-9) break;
                tls_start_[s] = end;
                tls_phase_[s] = static_cast<int32_t>(ph == last ? first : ph + 1);
            }
            continue;
        }
        // SUMO: a positive offset delays the programme (its first phase starts at time = offset).
        double c = std::fmod(t - net_.tls_offset[s], tls_cycle_[s]);
        if (c < 0) c += tls_cycle_[s];
        int64_t ph = first;
        // A small tolerance so that accumulated float time lands in the phase that starts at that instant.
        while (ph < last && c >= net_.phase_duration[ph] - 1e-9) {
            c -= net_.phase_duration[ph];
            ++ph;
        }
        tls_phase_[s] = static_cast<int32_t>(ph);
        tls_start_[s] = t - c;
    }
    for (int32_t k = 0; k < nk_; ++k) {
        const int32_t s = net_.link_tls[k];
        uint8_t c = net_.link_major[k] ? 'M' : 'm';
        if (s >= 0) {
            c = net_.phase_state[net_.phase_state_offsets[tls_phase_[s]] + net_.link_tls_index[k]];
            if (c == 'o' || c == 'O') c = net_.link_major[k] ? 'M' : 'm';  // signal off: priority rules
        }
        link_state_[k] = c;
    }
}

void TrafficSim::sort_membership() {
    const int c = cur_;
    // Stable counting sort by segment over the previous order (then the newly inserted): within a segment the
    // vehicles keep last step's order, which is nearly sorted by position, so the insertion sort below is
    // O(n).
    std::fill(seg_fill_.begin(), seg_fill_.end(), 0);
    int64_t m = 0;
    auto count = [&](int64_t id) {
        if (state_[id] != kVehRunning) return;
        ++seg_fill_[seg_[c][id] + 1];
        ++m;
    };
    for (int64_t id : order_) count(id);
    for (int64_t id : inserted_) count(id);
    for (int32_t s = 0; s < nseg_; ++s) seg_fill_[s + 1] += seg_fill_[s];
    std::copy(seg_fill_.begin(), seg_fill_.end(), seg_start_.begin());
    order_tmp_.resize(m);
    auto place = [&](int64_t id) {
        if (state_[id] != kVehRunning) return;
        order_tmp_[seg_fill_[seg_[c][id]]++] = id;
    };
    for (int64_t id : order_) place(id);
    for (int64_t id : inserted_) place(id);
    inserted_.clear();
    std::swap(order_, order_tmp_);
    nrun_ = m;
    const std::vector<double>& pos = pos_[c];
    int64_t* ord = order_.data();
    const int32_t* start = seg_start_.data();
#pragma omp parallel for schedule(dynamic, 64) if (nrun_ >= par_min_)
    for (int32_t s = 0; s < nseg_; ++s) {
        const int32_t b = start[s], e = start[s + 1];
        for (int32_t j = b + 1; j < e; ++j) {
            const int64_t id = ord[j];
            const double x = pos[id];
            int32_t q = j;
            while (q > b && (pos[ord[q - 1]] > x || (pos[ord[q - 1]] == x && ord[q - 1] > id))) {
                ord[q] = ord[q - 1];
                --q;
            }
            ord[q] = id;
        }
        for (int32_t j = b; j < e; ++j) rank_[ord[j]] = j;
    }
}

void TrafficSim::insert_pending(double t) {
    while (pending_next_ < pending_.size() && depart_s_[pending_[pending_next_]] <= t + 1e-9) {
        const int64_t id = pending_[pending_next_++];
        edge_queue_[routes_[route_begin_[id]]].push_back(id);
        ++queued_;
    }
    if (queued_ == 0) return;
    for (int32_t e = 0; e < ne_; ++e) {
        std::vector<int64_t>& q = edge_queue_[e];
        std::size_t& head = edge_queue_head_[e];
        if (head == q.size() || edge_closed_[e]) continue;
        while (head < q.size()) {
            const int64_t id = q[head];
            // A rerouted pending vehicle may have a new first edge; it stays in this queue (same departure
            // edge).
            if (!try_insert(id, t)) break;
            ++head;
            --queued_;
        }
        if (head == q.size()) {
            q.clear();
            head = 0;
        }
    }
    if (!inserted_.empty()) sort_membership();
}

bool TrafficSim::try_insert(int64_t id, double t) { return try_place(id, t, 0, false); }

bool TrafficSim::try_place(int64_t id, double t, int32_t r, bool teleport) {
    const int c = cur_;
    const Veh& p = vp_[id];
    const int32_t e = routes_[route_begin_[id] + r];
    // A teleported vehicle: on any lane from which its route goes on, at its length from the start, standing.
    const int32_t dlane = teleport ? -1 : depart_lane_[id];
    const double dpos = teleport ? -1.0 : depart_pos_[id];
    const double dspeed = teleport ? 0.0 : depart_speed_[id];
    const int64_t l0 = net_.edge_lane_offsets[e], l1 = net_.edge_lane_offsets[e + 1];
    // Candidate lanes: the given one, or every allowed lane from which the route continues (all allowed lanes
    // if none does), the one with the most room first (ties: the rightmost).
    int32_t best = -1;
    double best_speed = -1, best_room = -kInf;
    for (int pass = 0; pass < 2 && best < 0; ++pass) {
        for (int64_t l = l0; l < l1; ++l) {
            const int32_t lane = static_cast<int32_t>(l);
            if (dlane >= 0 && l != l0 + dlane) continue;
            if (!net_.lane_allow[lane]) continue;
            if (pass == 0 && dlane < 0 && route_size_[id] > r + 1 && choose_link(lane, id, r) < 0) continue;
            const double x = dpos >= 0 ? dpos : std::min(p.length, net_.lane_length[lane]);
            const double v0 = v0_on(id, lane);
            // Leader (sorted membership along the planned path, plus vehicles inserted this step on this
            // lane).
            double gap = kInf, vl = 0;
            const int32_t b = seg_begin(lane), en = seg_end(lane);
            const int64_t* ord = order_.data();
            const int32_t lo = first_after(lane, x);  // first vehicle with pos > x
            if (lo < en) {
                const int64_t j = ord[lo];
                gap = pos_[c][j] - vp_[j].length - x;
                vl = speed_[c][j];
            } else {
                double g2, v2;
                if (path_leader(id, lane, x, r, g2, v2) >= 0) {
                    gap = g2;
                    vl = v2;
                }
            }
            // Followers: the vehicle behind on this lane, or the nearest on each incoming link.
            double room_behind = kInf, need_behind = 0;
            auto follower = [&](int64_t j, double g) {
                const Veh& q = vp_[j];
                const double vj = speed_[c][j];
                if (g - (q.min_gap + vj * q.tau) < room_behind - need_behind) {
                    room_behind = g;
                    need_behind = q.min_gap + vj * q.tau;
                }
            };
            if (lo > b) {
                const int64_t j = ord[lo - 1];
                follower(j, x - p.length - pos_[c][j]);
            } else {
                for (int64_t a = lane_in_offsets_[lane]; a < lane_in_offsets_[lane + 1]; ++a) {
                    const int32_t s = nl_ + lane_in_links_[a];
                    if (seg_end(s) > seg_begin(s)) {
                        const int64_t j = ord[seg_end(s) - 1];
                        follower(j, seg_len_[s] - pos_[c][j] + x - p.length);
                    }
                }
            }
            for (int64_t j : inserted_) {
                if (seg_[c][j] != lane) continue;
                if (pos_[c][j] > x) {
                    const double g = pos_[c][j] - vp_[j].length - x;
                    if (g < gap) {
                        gap = g;
                        vl = speed_[c][j];
                    }
                } else {
                    follower(j, x - p.length - pos_[c][j]);
                }
            }
            if (room_behind < need_behind || room_behind < 0) continue;
            // Speed: the requested one, or "max": the largest up to v0 that keeps s0 + v T to the leader.
            double v;
            if (dspeed < 0) {
                v = std::min(v0, std::max(0.0, (gap - p.min_gap) / p.tau + vl));
                if (gap < p.min_gap) continue;
            } else {
                v = dspeed;
                if (gap < p.min_gap + std::max(0.0, v - vl) * p.tau) continue;
            }
            const double room = std::min(gap, 1e9);
            if (best < 0 || room > best_room + 1e-9) {
                best = lane;
                best_room = room;
                best_speed = v;
            }
        }
    }
    if (best < 0) return false;
    state_[id] = kVehRunning;
    seg_[c][id] = best;
    pos_[c][id] = dpos >= 0 ? dpos : std::min(p.length, net_.lane_length[best]);
    speed_[c][id] = best_speed;
    route_idx_[id] = r;
    if (!teleport) depart_time_[id] = t;
    plan_lane_[id] = -1;
    next_link_[c][id] = choose_link(best, id, r);
    go_[c][id] = 1;
    entered_[id] = 1;
    wait_[id] = 0;
    last_link_[id] = -1;
    inserted_.push_back(id);
    return true;
}

void TrafficSim::counts(int64_t out[3]) const {
    out[0] = out[1] = out[2] = 0;
    for (int64_t i = 0; i < n_; ++i) ++out[state_[i]];
}

void TrafficSim::read(TrafficArray what, void* out) const {
    const int c = cur_;
    const std::size_t n = static_cast<std::size_t>(n_);
    auto copy = [&](const auto& v) { std::memcpy(out, v.data(), n * sizeof(v[0])); };
    switch (what) {
        case TrafficArray::State:
            copy(state_);
            break;
        case TrafficArray::Lane: {
            int32_t* o = static_cast<int32_t*>(out);
            for (std::size_t i = 0; i < n; ++i) {
                o[i] = (state_[i] == kVehRunning && seg_[c][i] < nl_) ? seg_[c][i] : -1;
            }
            break;
        }
        case TrafficArray::Link: {
            int32_t* o = static_cast<int32_t*>(out);
            for (std::size_t i = 0; i < n; ++i) {
                o[i] = (state_[i] == kVehRunning && seg_[c][i] >= nl_) ? seg_[c][i] - nl_ : -1;
            }
            break;
        }
        case TrafficArray::Pos: {
            double* o = static_cast<double*>(out);
            for (std::size_t i = 0; i < n; ++i) o[i] = state_[i] == kVehPending ? kNaN : pos_[c][i];
            break;
        }
        case TrafficArray::Speed: {
            double* o = static_cast<double*>(out);
            for (std::size_t i = 0; i < n; ++i) o[i] = state_[i] == kVehRunning ? speed_[c][i] : 0.0;
            break;
        }
        case TrafficArray::RouteIndex:
            copy(route_idx_);
            break;
        case TrafficArray::DepartTime:
            copy(depart_time_);
            break;
        case TrafficArray::ArrivalTime:
            copy(arrival_time_);
            break;
        case TrafficArray::TimeLoss:
            copy(time_loss_);
            break;
        case TrafficArray::WaitingTime:
            copy(waiting_time_);
            break;
        case TrafficArray::Distance:
            copy(distance_);
            break;
        case TrafficArray::LaneChanges:
            copy(lane_changes_);
            break;
        case TrafficArray::SpeedFactor: {
            double* o = static_cast<double*>(out);
            for (std::size_t i = 0; i < n; ++i) o[i] = vp_[i].factor;
            break;
        }
    }
}

namespace {
// Point at arc length s along a polyline of m points, the arc length scaled by `scale`.
void along(const double* xy, int64_t m, double s, double* out) {
    for (int64_t j = 0; j + 1 < m; ++j) {
        const double dx = xy[2 * j + 2] - xy[2 * j], dy = xy[2 * j + 3] - xy[2 * j + 1];
        const double L = std::sqrt(dx * dx + dy * dy);
        if (s <= L || j + 2 == m) {
            const double f = L > 0 ? std::min(1.0, std::max(0.0, s / L)) : 0.0;
            out[0] = xy[2 * j] + f * dx;
            out[1] = xy[2 * j + 1] + f * dy;
            return;
        }
        s -= L;
    }
    out[0] = xy[0];
    out[1] = xy[1];
}

double polyline_length(const double* xy, int64_t m) {
    double L = 0;
    for (int64_t j = 0; j + 1 < m; ++j)
        L += std::hypot(xy[2 * j + 2] - xy[2 * j], xy[2 * j + 3] - xy[2 * j + 1]);
    return L;
}
}  // namespace

void TrafficSim::positions(double* out) const {
    const int c = cur_;
    const double* xy = net_.lane_shape_xy.data();
    const int64_t* off = net_.lane_shape_offsets.data();
    for (int64_t i = 0; i < n_; ++i) {
        double* o = out + 2 * i;
        if (state_[i] != kVehRunning) {
            o[0] = o[1] = kNaN;
            continue;
        }
        const int32_t s = seg_[c][i];
        const double x = pos_[c][i];
        if (s < nl_) {
            const int64_t m = off[s + 1] - off[s];
            const double L = polyline_length(xy + 2 * off[s], m);
            along(xy + 2 * off[s], m, x * (L / net_.lane_length[s]), o);
        } else {
            // Inside a junction: on the straight line from the end of the from-lane to the start of the
            // to-lane.
            const int32_t k = s - nl_;
            const int32_t a = net_.link_from_lane[k], b = net_.link_to_lane[k];
            const double* pa = xy + 2 * (off[a + 1] - 1);
            const double* pb = xy + 2 * off[b];
            const double f = std::min(1.0, std::max(0.0, x / net_.link_length[k]));
            o[0] = pa[0] + f * (pb[0] - pa[0]);
            o[1] = pa[1] + f * (pb[1] - pa[1]);
        }
    }
}

void TrafficSim::edge_stats(int64_t* entered, double* speed_sum, int64_t* samples, bool reset) {
    std::copy(stat_entered_.begin(), stat_entered_.end(), entered);
    std::copy(stat_speed_.begin(), stat_speed_.end(), speed_sum);
    std::copy(stat_samples_.begin(), stat_samples_.end(), samples);
    if (reset) {
        std::fill(stat_entered_.begin(), stat_entered_.end(), 0);
        std::fill(stat_speed_.begin(), stat_speed_.end(), 0.0);
        std::fill(stat_samples_.begin(), stat_samples_.end(), 0);
    }
}

void TrafficSim::link_states(uint8_t* out) const { std::copy(link_state_.begin(), link_state_.end(), out); }

void TrafficSim::tls_phases(int32_t* out) const { std::copy(tls_phase_.begin(), tls_phase_.end(), out); }

}  // namespace twin
