// CrowdSim: construction and checks, parameters, agents, navigation fields, stairs (the serial phase).
// The per-agent kernels of the two models and the step driver are in crowd_step.cpp.
#include "twin/crowd.hpp"

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

std::string num(double v) {
    std::ostringstream s;
    s << v;
    return s.str();
}

std::string cell_str(int l, int iy, int ix) {
    return "(" + std::to_string(l) + ", " + std::to_string(iy) + ", " + std::to_string(ix) + ")";
}

// Parameters shared by both models, appended to each model's own.
std::vector<CrowdParam> with_shared(std::vector<CrowdParam> own) {
    const std::vector<CrowdParam> shared = {
        {"range_cutoff", 5.0,
         "interactions are ignored beyond contact + range_cutoff * range (exp(-5) = 0.7 % of the contact "
         "value; "
         "the calibrated ranges are longer than the sources', and this keeps the neighbour count down)"},
        {"stuck_time", 3.0,
         "s: an agent whose averaged progress speed is below stuck_speed this long (time above it counts "
         "back) "
         "is stuck; if it is deadlocked rather than queueing, an unstick episode starts"},
        {"stuck_speed", 0.15,
         "m/s: averaged progress speed (along the field's direction) below which an agent is not getting "
         "anywhere "
         "(above the jitter of two agents pushing against each other; slow queues are told apart by the "
         "deadlock "
         "test)"},
        {"stuck_window", 2.0, "s: time constant of the moving average of the progress speed"},
        {"unstick_time", 2.0,
         "s: length of an unstick episode (social force: the desired direction is turned aside; "
         "collision-free "
         "speed: turned directions are probed for a free one)"},
        {"unstick_angle", 60.0,
         "degrees (social force): mean turn of a stuck agent's desired direction, first episode to the "
         "right, "
         "later a side drawn from the counter-based RNG; magnitude x U(0.75, 1.25)"},
        {"stair_density", 1.5,
         "P/m^2: stair capacity = length * width * stair_density (at least 1); 1.5 holds stair flow near the "
         "handbooks' ~1 P/(m s) at 0.675 m/s"},
    };
    own.insert(own.end(), shared.begin(), shared.end());
    return own;
}

const std::vector<CrowdParam> kSocialForce = with_shared({
    {"mass", 80.0, "kg (Helbing, Farkas & Vicsek 2000)"},
    {"tau", 0.5, "s: relaxation time of the driving term (Helbing et al. 2000)"},
    {"agent_strength", 335.0,
     "N: A of the social repulsion A exp((l_ij + time_gap u lane - d_ij) / B) w(phi). Calibrated with "
     "agent_range, anisotropy, time_gap and wall_strength (r = 0.2 m): Weidmann's fundamental diagram within "
     "0.87-1.20 x at 0.5-4 P/m^2 (peak 1.45 P/(m s)), 1.53 P/s through a 1 m door, 1.46-1.80 P/(m s) through "
     "0.8-2.4 m, and no second jam behind a corridor (RiMEA 12; see anisotropy) (Helbing et al. 2000's A = "
     "2000 N, B = 0.08 m "
     "without the speed term keep a crowd near free speed up to 3 P/m^2; with anisotropy 0.6 and time_gap "
     "0.5 s, A = 200-300 N was 1.4-2.5 x Weidmann's speed at 2-4 P/m^2)"},
    {"agent_range", 0.12, "m: B of the social repulsion (calibrated, see agent_strength)"},
    {"anisotropy", 0.4,
     "lambda of the angular weight w(phi) = lambda + (1 - lambda) (1 + cos phi) / 2 of the social repulsion "
     "(Helbing & Molnar 1995; 1 = isotropic; calibrated, see agent_strength): those behind weigh 0.4 of "
     "those ahead. A jam so pushes its front less hard into a narrow passage: with 0.6 (A = 400 N, time_gap "
     "0.5 s) a jam pushed a 1 m corridor's stream to the free-stream capacity of an equally wide exit behind "
     "it, where it queued again (RiMEA 12: 5 or more queued in 7 of 16 runs; now 1 of 48). The repulsion's "
     "component "
     "against the desired direction is capped at m v0 / tau: people ahead can stop a pedestrian but not walk "
     "it backwards (the weight is not reciprocal; uncapped, a crowd above 3.5 P/m^2 walks backwards)"},
    {"time_gap", 0.6,
     "s: the space kept ahead grows with the walking speed: the social repulsion acts on the gap beyond l_ij "
     "+ time_gap * u * lane, u the speed along the desired direction (at most v0), lane = 1 - b / l_ij (>= "
     "0) "
     "for j ahead at a lateral offset b from the agent's line of walking, 0 for j beside or behind (Seyfried "
     "et al. 2006: d = a + b v; Chraibi et al. 2010). Only who is in the way counts: with the cosine of j's "
     "angle instead, the neighbours diagonally ahead also keep their distance, and a crowd discharging into "
     "a "
     "2 m corridor or turning a corner is 25-50 % slower. 0 = Helbing's speed-independent force (calibrated, "
     "see agent_strength)"},
    {"body_force", 1.2e5, "kg/s^2: k of the body force k g(r_ij - d_ij) (Helbing et al. 2000)"},
    {"friction", 2.4e5,
     "kg/(m s): kappa of the sliding friction (Helbing et al. 2000); per contact limited to 0.25 m / substep "
     "so that one substep cannot reverse a relative tangential velocity"},
    {"wall_strength", 1000.0,
     "N: A of the wall repulsion A exp((r - d) / B) (calibrated with wall_range, see agent_strength: "
     "Helbing et al. 2000's 2000 N and 0.08 m make a 1 m wide corridor single file, 1.3 P/s, and cut the "
     "flow "
     "through a 0.8 m door to 1.3 P/(m s); weaker walls let a crowd at 4 P/m^2 walk 1.2-1.3 x Weidmann's "
     "speed along them)"},
    {"wall_range", 0.05, "m: B of the wall repulsion (calibrated, see wall_strength)"},
    {"wall_body_force", 1.2e5, "kg/s^2: k against walls (Helbing et al. 2000)"},
    {"wall_friction", 2.4e5, "kg/(m s): kappa against walls (Helbing et al. 2000)"},
    {"speed_cap", 1.5, "the speed never exceeds speed_cap * desired speed"},
    {"max_substep", 0.01,
     "s: dt is split into ceil(dt / max_substep) semi-implicit Euler substeps (the body force k / m = "
     "1500 s^-2 and the friction need <= 0.01 s for stability)"},
    {"social_interval", 0.05,
     "s: the social repulsion between agents, a slow force (its time scale sqrt(m B / A) = 0.17 s), is "
     "evaluated every social_interval (rounded to whole substeps, at least one) and held in between; the "
     "driving term, contact forces and walls in every substep (multiple time stepping, r-RESPA: Tuckerman, "
     "Berne & Martyna 1992). Results hardly depend on dt then: 0.05 s steps of five substeps and 0.01 s "
     "steps "
     "evaluate the same forces at the same times"},
});

const std::vector<CrowdParam> kCollisionFree = with_shared({
    {"time_gap", 0.55,
     "s: T of the speed function min(v0, max(0, (s - l) / T)) (Tordeux et al. 2016). Calibrated with "
     "agent_range (r = 0.2 m): Weidmann's fundamental diagram within 0.8-1.2 x at 0.5-4 P/m^2, 2.0 P/s "
     "through a 1 m door (T = 1 s, the single-file fit, gives about 1 P/s, below laboratory data)"},
    {"agent_strength", 8.0,
     "a of the neighbour term a exp((l - s) / D) (JuPedSim 1.4 CollisionFreeSpeedModel default)"},
    {"agent_range", 0.2,
     "m: D of the neighbour term (JuPedSim 1.4: 0.1 m; calibrated, see time_gap: with 0.1 m agents of equal "
     "desired speed form lanes and walk 1.25 x Weidmann's speed at 1 P/m^2)"},
    {"cone_angle", 90.0,
     "degrees: an agent counts as ahead if it is within the strip of width l_ij along the direction "
     "(Tordeux et al.) and within this angle of the direction"},
    {"wall_strength", 5.0, "a of the wall term a exp((r - s) / D) (JuPedSim 1.4 default)"},
    {"wall_range", 0.02, "m: D of the wall term (JuPedSim 1.4 default)"},
    {"max_substep", 0.1, "s: dt is split into ceil(dt / max_substep) substeps (first-order model)"},
    {"unstick_shrink", 0.1,
     "fraction of its radius an agent gives up per unstick episode in a row without progress (it squeezes "
     "past others; hard discs at a door form arches that nothing else breaks)"},
    {"unstick_shrink_max", 0.5, "largest fraction of the radius given up (bounds overlaps to this x radius)"},
});

double* param_slot(CrowdParams& p, CrowdModel m, const std::string& name) {
    if (name == "range_cutoff") return &p.range_cutoff;
    if (name == "stuck_time") return &p.stuck_time;
    if (name == "stuck_speed") return &p.stuck_speed;
    if (name == "stuck_window") return &p.stuck_window;
    if (name == "unstick_time") return &p.unstick_time;
    if (name == "unstick_angle") return &p.unstick_angle;
    if (name == "stair_density") return &p.stair_density;
    if (name == "max_substep") return &p.max_substep;
    if (name == "time_gap") return &p.time_gap;  // (both models, see their tables)
    if (m == CrowdModel::SocialForce) {
        if (name == "mass") return &p.mass;
        if (name == "tau") return &p.tau;
        if (name == "agent_strength") return &p.agent_strength;
        if (name == "agent_range") return &p.agent_range;
        if (name == "anisotropy") return &p.anisotropy;
        if (name == "body_force") return &p.body_force;
        if (name == "friction") return &p.friction;
        if (name == "wall_strength") return &p.wall_strength;
        if (name == "wall_range") return &p.wall_range;
        if (name == "wall_body_force") return &p.wall_body_force;
        if (name == "wall_friction") return &p.wall_friction;
        if (name == "speed_cap") return &p.speed_cap;
        if (name == "social_interval") return &p.social_interval;
    } else {
        if (name == "cone_angle") return &p.cone_angle;
        if (name == "unstick_shrink") return &p.unstick_shrink;
        if (name == "unstick_shrink_max") return &p.unstick_shrink_max;
        if (name == "agent_strength") return &p.cfs_agent_strength;
        if (name == "agent_range") return &p.cfs_agent_range;
        if (name == "wall_strength") return &p.cfs_wall_strength;
        if (name == "wall_range") return &p.cfs_wall_range;
    }
    return nullptr;
}

// Parameters that must be > 0 (the others must be >= 0).
bool must_be_positive(const std::string& name) {
    static const char* positive[] = {"mass",           "tau",          "agent_range",   "wall_range",
                                     "speed_cap",      "time_gap",     "max_substep",   "stuck_time",
                                     "stuck_window",   "unstick_time", "stair_density", "range_cutoff",
                                     "social_interval"};
    for (const char* p : positive)
        if (name == p) return true;
    return false;
}

}  // namespace

CrowdModel crowd_model_from_name(const std::string& name) {
    if (name == "social_force") return CrowdModel::SocialForce;
    if (name == "collision_free_speed") return CrowdModel::CollisionFreeSpeed;
    throw std::invalid_argument("model must be 'social_force' or 'collision_free_speed', got '" + name + "'");
}

const char* crowd_model_name(CrowdModel model) {
    return model == CrowdModel::SocialForce ? "social_force" : "collision_free_speed";
}

const std::vector<CrowdParam>& crowd_default_params(CrowdModel model) {
    return model == CrowdModel::SocialForce ? kSocialForce : kCollisionFree;
}

double CrowdSim::state_bytes_per_agent() {
    // Columns: pos and vel, double buffered (4 x 2 doubles); exit_time (double); z, start_time and 8 more
    // floats; 8 int32 (level, field, exit_index, stair_index, queue_since, unstick, id_of, slot_of); 3 int16
    // (pending, dir x 2); 2 int8. Neighbour index: one int32 slot per agent and at most two cells per agent
    // (a uint32 start each). Contact lists: kListCap int16 offsets and a uint8 count per agent, and the
    // social repulsion held between its evaluations (2 floats).
    return 4 * 16 + 8 + 10 * 4 + 8 * 4 + 3 * 2 + 2 * 1 + (4 + 2 * 4) + (kListCap * 2 + 1) + 2 * 4;
}

CrowdSim::CrowdSim(CrowdModel model, double dt, uint64_t seed, CrowdGeometry geometry,
                   const std::vector<std::pair<std::string, double>>& params)
    : model_(model),
      dt_(dt),
      seed_(seed),
      g_(std::move(geometry)),
      nav_(g_.levels, g_.ny, g_.nx, g_.cell_size, g_.origins, g_.walkable, {}, 8) {
    // (The DistanceField constructor above already checked levels, ny, nx, cell_size and origins.)
    if (!(std::isfinite(dt) && dt > 0 && dt <= 1.0)) {
        throw std::invalid_argument("dt must be a number in (0, 1] seconds, got " + num(dt));
    }
    // Parameters: defaults, then the caller's values by name.
    for (const CrowdParam& d : crowd_default_params(model)) {
        *param_slot(p_, model, d.name) = d.value;
    }
    for (const auto& kv : params) {
        double* slot = param_slot(p_, model, kv.first);
        if (!slot) {
            std::string known;
            for (const CrowdParam& d : crowd_default_params(model))
                known += (known.empty() ? "" : ", ") + std::string(d.name);
            throw std::invalid_argument("unknown parameter '" + kv.first + "' for model " +
                                        crowd_model_name(model) + "; known: " + known);
        }
        const double v = kv.second;
        // (time_gap divides in the collision-free speed model; 0 switches the social force's speed term off)
        const bool pos =
            must_be_positive(kv.first) && !(kv.first == "time_gap" && model == CrowdModel::SocialForce);
        if (!std::isfinite(v) || (pos ? !(v > 0) : !(v >= 0))) {
            throw std::invalid_argument("parameter '" + kv.first + "' must be a finite number " +
                                        (pos ? "> 0" : ">= 0") + ", got " + num(v));
        }
        if (kv.first == "unstick_angle" && !(v > 0 && v < 180)) {
            throw std::invalid_argument("parameter 'unstick_angle' must be in (0, 180) degrees, got " +
                                        num(v));
        }
        *slot = v;
    }
    for (const CrowdParam& d : crowd_default_params(model)) {
        param_list_.emplace_back(d.name, *param_slot(p_, model, d.name));
    }
    if (model == CrowdModel::CollisionFreeSpeed && !(p_.cone_angle > 0 && p_.cone_angle <= 90)) {
        throw std::invalid_argument("parameter 'cone_angle' must be in (0, 90] degrees, got " +
                                    num(p_.cone_angle));
    }
    if (model == CrowdModel::CollisionFreeSpeed && !(p_.unstick_shrink < 1)) {
        throw std::invalid_argument("parameter 'unstick_shrink' must be in [0, 1), got " +
                                    num(p_.unstick_shrink));
    }
    cone_cos_ = std::cos(p_.cone_angle * 3.14159265358979323846 / 180.0);
    nsub_ = std::max(1, static_cast<int>(std::ceil(dt_ / p_.max_substep - 1e-9)));

    const int L = g_.levels;
    const std::size_t cells = static_cast<std::size_t>(L) * g_.ny * g_.nx;
    if (g_.level_z.size() != static_cast<std::size_t>(L)) {
        throw std::invalid_argument("level_z must have one value per level (" + std::to_string(L) + ")");
    }
    for (int l = 0; l < L; ++l) {
        if (!std::isfinite(g_.level_z[l])) {
            throw std::invalid_argument("level_z[" + std::to_string(l) + "] must be finite, got " +
                                        num(g_.level_z[l]));
        }
    }
    if (g_.walkable.size() != cells)
        throw std::invalid_argument("walkable must hold levels * ny * nx values");
    for (auto& w : g_.walkable) w = w ? 1 : 0;
    if (g_.exit_cells.size() != cells) {
        throw std::invalid_argument("exit_cells must have the shape of walkable " +
                                    cell_str(L, g_.ny, g_.nx));
    }
    inv_cell_ = 1.0 / g_.cell_size;
    cell_info_.assign(cells, 0);
    for (std::size_t c = 0; c < cells; ++c) {
        const int32_t e = g_.exit_cells[c];
        if (e < -1 || e >= 16383 || (e >= 0 && !g_.walkable[c])) {
            const int ix = static_cast<int>(c % g_.nx), iy = static_cast<int>((c / g_.nx) % g_.ny),
                      l = static_cast<int>(c / (static_cast<std::size_t>(g_.nx) * g_.ny));
            throw std::invalid_argument(
                "exit_cells" + cell_str(l, iy, ix) + " = " + std::to_string(e) +
                (e < -1 || e >= 16383 ? " must be -1 or an exit index in [0, 16383)"
                                      : " marks an exit in a non-walkable cell (exits must be walkable)"));
        }
        cell_info_[c] = static_cast<uint16_t>((g_.walkable[c] ? kWalkBit : 0) | ((e + 1) << 2));
    }

    // Walls.
    const int64_t nw = static_cast<int64_t>(g_.walls.size() / 4);
    if (g_.walls.size() != static_cast<std::size_t>(4 * nw) ||
        g_.wall_levels.size() != static_cast<std::size_t>(nw)) {
        throw std::invalid_argument("walls must be (w, 4) and wall_levels (w,)");
    }
    for (int64_t w = 0; w < nw; ++w) {
        for (int a = 0; a < 4; ++a) {
            if (!std::isfinite(g_.walls[4 * w + a])) {
                throw std::invalid_argument("walls[" + std::to_string(w) + "] must be finite, got " +
                                            num(g_.walls[4 * w + a]));
            }
        }
        if (g_.wall_levels[w] < 0 || g_.wall_levels[w] >= L) {
            throw std::invalid_argument("wall_levels[" + std::to_string(w) +
                                        "] = " + std::to_string(g_.wall_levels[w]) +
                                        " is not a level in [0, " + std::to_string(L) + ")");
        }
    }
    wall_index_ = std::make_unique<SegmentIndex2D>(g_.walls.data(), nw, g_.wall_levels.data());
    bin_cells_ = std::max(1, static_cast<int>(std::lround(1.0 / g_.cell_size)));
    nbx_ = (g_.nx + bin_cells_ - 1) / bin_cells_;
    nby_ = (g_.ny + bin_cells_ - 1) / bin_cells_;
    bin_of_col_.resize(g_.nx);
    bin_of_row_.resize(g_.ny);
    for (int ix = 0; ix < g_.nx; ++ix) bin_of_col_[ix] = ix / bin_cells_;
    for (int iy = 0; iy < g_.ny; ++iy) bin_of_row_[iy] = iy / bin_cells_;

    // Stairs.
    const int64_t ns = static_cast<int64_t>(g_.stairs.size() / 8);
    if (g_.stairs.size() != static_cast<std::size_t>(8 * ns))
        throw std::invalid_argument("stairs must be (s, 8)");
    if (ns > 16383)
        throw std::invalid_argument("at most 16383 stairs are supported, got " + std::to_string(ns));
    stair_ends_.assign(L, {});
    for (int64_t s = 0; s < ns; ++s) {
        const double* r = g_.stairs.data() + 8 * s;
        const std::string name = "stairs[" + std::to_string(s) + "]";
        for (int a = 0; a < 8; ++a) {
            if (!std::isfinite(r[a])) throw std::invalid_argument(name + " must be finite, got " + num(r[a]));
        }
        Stair st{};
        for (int e = 0; e < 2; ++e) {
            const double lv = r[3 * e];
            if (lv != std::floor(lv) || lv < 0 || lv >= L) {
                throw std::invalid_argument(name + ": level_" + (e ? "b" : "a") + " = " + num(lv) +
                                            " is not a level in [0, " + std::to_string(L) + ")");
            }
            st.level[e] = static_cast<int>(lv);
            st.end[e][0] = r[3 * e + 1];
            st.end[e][1] = r[3 * e + 2];
            int iy = 0, ix = 0;
            if (!locate(st.end[e][0], st.end[e][1], st.level[e], iy, ix) ||
                !walkable_at(st.level[e], iy, ix)) {
                throw std::invalid_argument(name + ": end " + (e ? "b" : "a") + " (" + num(st.end[e][0]) +
                                            ", " + num(st.end[e][1]) + ") on level " +
                                            std::to_string(st.level[e]) + " is not in a walkable cell");
            }
        }
        if (st.level[0] == st.level[1]) {
            throw std::invalid_argument(name + ": level_a and level_b must differ, both are " +
                                        std::to_string(st.level[0]));
        }
        st.length = r[6];
        st.width = r[7];
        if (!(st.length > 0) || !(st.width > 0)) {
            throw std::invalid_argument(name + ": length_m and width_m must be > 0, got " + num(st.length) +
                                        ", " + num(st.width));
        }
        const double ax = st.end[1][0] - st.end[0][0], ay = st.end[1][1] - st.end[0][1];
        const double an = std::hypot(ax, ay);
        st.axis[0] = an > 0 ? ax / an : 0.0;
        st.axis[1] = an > 0 ? ay / an : 0.0;
        st.capacity = std::max<int64_t>(
            1, static_cast<int64_t>(std::floor(st.length * st.width * p_.stair_density + 1e-9)));
        st.zone = std::max(0.5 * st.width, g_.cell_size);
        stairs_.push_back(st);
        // Entry zones: cells within `zone` of each end (and the end's own cell).
        for (int e = 0; e < 2; ++e) {
            const int l = st.level[e];
            stair_ends_[l].push_back(static_cast<int32_t>(2 * s + e));
            const double x0 = g_.origins[2 * l], y0 = g_.origins[2 * l + 1], h = g_.cell_size;
            const int ix0 = std::max(0, static_cast<int>(std::floor((st.end[e][0] - st.zone - x0) / h)) - 1);
            const int ix1 =
                std::min(g_.nx - 1, static_cast<int>(std::floor((st.end[e][0] + st.zone - x0) / h)) + 1);
            const int iy0 = std::max(0, static_cast<int>(std::floor((st.end[e][1] - st.zone - y0) / h)) - 1);
            const int iy1 =
                std::min(g_.ny - 1, static_cast<int>(std::floor((st.end[e][1] + st.zone - y0) / h)) + 1);
            for (int iy = iy0; iy <= iy1; ++iy) {
                for (int ix = ix0; ix <= ix1; ++ix) {
                    // A cell is in the zone if any point of it is within `zone` of the end point.
                    const double cx = std::clamp(st.end[e][0], x0 + ix * h, x0 + (ix + 1) * h);
                    const double cy = std::clamp(st.end[e][1], y0 + iy * h, y0 + (iy + 1) * h);
                    if (std::hypot(cx - st.end[e][0], cy - st.end[e][1]) <= st.zone)
                        cell_info_[flat(l, iy, ix)] |= kZoneBit;
                }
            }
        }
    }
    scratch_.resize(1);
}

CrowdSim::~CrowdSim() = default;

void CrowdSim::grow(int64_t n) {
    const auto m = static_cast<std::size_t>(n);
    for (int b = 0; b < 2; ++b) {
        pos_[b].resize(2 * m);
        vel_[b].resize(2 * m);
    }
    dir_.resize(2 * m);
    exit_time_.resize(m);
    for (auto* v :
         {&z_, &start_time_, &v0_, &radius_, &up_, &down_, &stair_s_, &stair_off_, &stuck_, &progress_})
        v->resize(m);
    for (auto* v :
         {&level_, &field_, &exit_index_, &stair_index_, &queue_since_, &unstick_, &id_of_, &slot_of_})
        v->resize(m);
    pending_.resize(m);
    state_.resize(m);
    stair_end_.resize(m);
}

namespace {

// col[k] = old col[order[k]] for rows of `width` values; `scratch` holds at least n rows. Call from every
// thread of a parallel region (work-shared loops).
template <typename T>
void permute(std::vector<T>& col, int width, const int32_t* order, int64_t n, void* scratch) {
    const std::size_t row = sizeof(T) * static_cast<std::size_t>(width);
    T* tmp = static_cast<T*>(scratch);
    T* c = col.data();
#pragma omp for schedule(static)
    for (int64_t k = 0; k < n; ++k) std::memcpy(tmp + k * width, c + order[k] * width, row);
#pragma omp for schedule(static)
    for (int64_t k = 0; k < n; ++k) std::memcpy(c + k * width, tmp + k * width, row);
}

}  // namespace

// Re-sorts the agents' slots by floor-index cell (the index's order: floor agents by cell, then the others).
// Call with the index built over the current slots; it stays valid (its cells now hold consecutive slots).
// Only the memory layout changes: every agent keeps its id and its state.
void CrowdSim::reorder() {
    const int64_t n = n_;
    if (n == 0) return;
    const int32_t* order = fids_.data();
    // The lists' storage is the scratch (kListCap * 2 >= 16 bytes per agent): they are rebuilt after this.
    static_assert(kListCap * sizeof(int16_t) >= 2 * sizeof(double), "reorder needs 16 bytes per agent");
    void* s = list_.data();
#pragma omp parallel if (n >= kParallelMinAgents)
    {
        for (int b = 0; b < 2; ++b) {
            permute(pos_[b], 2, order, n, s);
            permute(vel_[b], 2, order, n, s);
        }
        permute(dir_, 2, order, n, s);
        permute(exit_time_, 1, order, n, s);
        for (auto* v :
             {&z_, &start_time_, &v0_, &radius_, &up_, &down_, &stair_s_, &stair_off_, &stuck_, &progress_})
            permute(*v, 1, order, n, s);
        for (auto* v : {&level_, &field_, &exit_index_, &stair_index_, &queue_since_, &unstick_, &id_of_})
            permute(*v, 1, order, n, s);
        permute(pending_, 1, order, n, s);
        permute(state_, 1, order, n, s);
        permute(stair_end_, 1, order, n, s);
#pragma omp for schedule(static)
        for (int64_t k = 0; k < n; ++k) {
            slot_of_[id_of_[k]] = static_cast<int32_t>(k);
            fids_[k] = static_cast<int32_t>(k);
        }
    }
}

void CrowdSim::read(CrowdArray what, void* out) const {
    const int64_t n = n_;
    auto gather = [&](const auto& col, int width, auto* dst) {
        for (int64_t id = 0; id < n; ++id) {
            const int64_t s = slot_of_[id];
            for (int a = 0; a < width; ++a) dst[id * width + a] = col[s * width + a];
        }
    };
    switch (what) {
        case CrowdArray::Positions:
            gather(pos_[0], 2, static_cast<double*>(out));
            break;
        case CrowdArray::Velocities:
            gather(vel_[0], 2, static_cast<double*>(out));
            break;
        case CrowdArray::Levels:
            gather(level_, 1, static_cast<int32_t*>(out));
            break;
        case CrowdArray::Z:
            gather(z_, 1, static_cast<double*>(out));
            break;
        case CrowdArray::State:
            gather(state_, 1, static_cast<int8_t*>(out));
            break;
        case CrowdArray::Field:
            gather(field_, 1, static_cast<int32_t*>(out));
            break;
        case CrowdArray::ExitIndex:
            gather(exit_index_, 1, static_cast<int32_t*>(out));
            break;
        case CrowdArray::ExitTime:
            gather(exit_time_, 1, static_cast<double*>(out));
            break;
        case CrowdArray::StairIndex:
            gather(stair_index_, 1, static_cast<int32_t*>(out));
            break;
        case CrowdArray::DesiredSpeed:
            gather(v0_, 1, static_cast<float*>(out));
            break;
        case CrowdArray::Radius:
            gather(radius_, 1, static_cast<float*>(out));
            break;
    }
}

int64_t CrowdSim::add_agents(int64_t n, const double* positions, const int32_t* levels,
                             const double* desired_speed, const double* radius, const double* start_time,
                             const int32_t* field, const double* stair_up_speed,
                             const double* stair_down_speed) {
    if (n < 0) throw std::invalid_argument("the number of agents must be >= 0");
    // Check everything before changing any state.
    for (int64_t k = 0; k < n; ++k) {
        const std::string who = "agent " + std::to_string(k);
        const double x = positions[2 * k], y = positions[2 * k + 1];
        if (!std::isfinite(x) || !std::isfinite(y)) {
            throw std::invalid_argument("positions[" + std::to_string(k) + "] = (" + num(x) + ", " + num(y) +
                                        ") must be finite");
        }
        const int32_t l = levels[k];
        if (l < 0 || l >= g_.levels) {
            throw std::invalid_argument("levels[" + std::to_string(k) + "] = " + std::to_string(l) +
                                        " is not a level in [0, " + std::to_string(g_.levels) + ")");
        }
        int iy = 0, ix = 0;
        if (!locate(x, y, l, iy, ix)) {
            throw std::invalid_argument("positions[" + std::to_string(k) + "] = (" + num(x) + ", " + num(y) +
                                        ") on level " + std::to_string(l) + " is outside the raster");
        }
        if (!g_.walkable[flat(l, iy, ix)]) {
            throw std::invalid_argument("positions[" + std::to_string(k) + "] = (" + num(x) + ", " + num(y) +
                                        ") on level " + std::to_string(l) +
                                        " lies in the non-walkable cell " + cell_str(l, iy, ix));
        }
        auto check = [&](const double* a, const char* name, double lo, double hi) {
            const double v = a[k];
            if (!(std::isfinite(v) && v > lo && v <= hi)) {
                throw std::invalid_argument(std::string(name) + "[" + std::to_string(k) + "] = " + num(v) +
                                            " must be in (" + num(lo) + ", " + num(hi) + "]");
            }
        };
        check(desired_speed, "desired_speed", 0.0, 10.0);
        check(radius, "radius", 0.0, 2.0);
        check(stair_up_speed, "stair_up_speed", 0.0, 10.0);
        check(stair_down_speed, "stair_down_speed", 0.0, 10.0);
        if (!std::isfinite(start_time[k])) {
            throw std::invalid_argument("start_time[" + std::to_string(k) + "] = " + num(start_time[k]) +
                                        " must be finite (seconds of simulated time)");
        }
        if (field[k] < 0 || field[k] >= n_fields()) {
            throw std::invalid_argument(
                "field[" + std::to_string(k) + "] = " + std::to_string(field[k]) +
                (n_fields() == 0 ? " but no navigation fields are set (call set_fields first)"
                                 : " is not a field index in [0, " + std::to_string(n_fields()) + ")"));
        }
        (void)who;
    }
    const int64_t first = n_;
    grow(n_ + n);
    reorder_pending_ = true;
    lists_valid_ = false;
    for (int64_t k = 0; k < n; ++k) {
        const int64_t i = n_ + k;  // new agents take the next slots; their ids equal those slots
        id_of_[i] = static_cast<int32_t>(i);
        slot_of_[i] = static_cast<int32_t>(i);
        for (int b = 0; b < 2; ++b) {
            pos_[b][2 * i] = positions[2 * k];
            pos_[b][2 * i + 1] = positions[2 * k + 1];
            vel_[b][2 * i] = vel_[b][2 * i + 1] = 0.0;
        }
        level_[i] = levels[k];
        z_[i] = static_cast<float>(g_.level_z[levels[k]]);
        state_[i] = kCrowdWaiting;
        field_[i] = field[k];
        exit_index_[i] = -1;
        exit_time_[i] = std::numeric_limits<double>::quiet_NaN();
        stair_index_[i] = -1;
        start_time_[i] = static_cast<float>(start_time[k]);
        v0_[i] = static_cast<float>(desired_speed[k]);
        radius_[i] = static_cast<float>(radius[k]);
        up_[i] = static_cast<float>(stair_up_speed[k]);
        down_[i] = static_cast<float>(stair_down_speed[k]);
        stair_s_[i] = 0.0f;
        stair_off_[i] = 0.0f;
        stuck_[i] = 0.0f;
        progress_[i] = v0_[i];
        pending_[i] = -1;
        queue_since_[i] = -1;
        unstick_[i] = 0;
        stair_end_[i] = -1;
        dir_[2 * i] = dir_[2 * i + 1] = INT16_MIN;
        max_radius_ = std::max(max_radius_, radius_[i]);
        max_v0_ = std::max(max_v0_, v0_[i]);
    }
    n_ += n;
    return first;
}

void CrowdSim::set_field_of(int64_t k, const int64_t* ids, const int32_t* field) {
    for (int64_t q = 0; q < k; ++q) {
        if (ids[q] < 0 || ids[q] >= n_) {
            throw std::invalid_argument("ids[" + std::to_string(q) + "] = " + std::to_string(ids[q]) +
                                        " is not an agent id in [0, " + std::to_string(n_) + ")");
        }
        if (field[q] < 0 || field[q] >= n_fields()) {
            throw std::invalid_argument("field[" + std::to_string(q) + "] = " + std::to_string(field[q]) +
                                        " is not a field index in [0, " + std::to_string(n_fields()) + ")");
        }
    }
    for (int64_t q = 0; q < k; ++q) {
        const int64_t s = slot_of_[ids[q]];
        field_[s] = field[q];
        dir_[2 * s] = INT16_MIN;  // re-sampled at the next substep
    }
    lists_valid_ = false;  // (the held social repulsion depends on the direction)
}

namespace {
void check_ids(int64_t k, const int64_t* ids, int64_t n) {
    for (int64_t q = 0; q < k; ++q) {
        if (ids[q] < 0 || ids[q] >= n) {
            throw std::invalid_argument("ids[" + std::to_string(q) + "] = " + std::to_string(ids[q]) +
                                        " is not an agent id in [0, " + std::to_string(n) + ")");
        }
    }
}
}  // namespace

void CrowdSim::set_desired_speed(int64_t k, const int64_t* ids, const double* speed) {
    check_ids(k, ids, n_);
    for (int64_t q = 0; q < k; ++q) {
        if (!(speed[q] >= 0.0 && speed[q] <= 10.0)) {
            throw std::invalid_argument("speed[" + std::to_string(q) + "] = " + std::to_string(speed[q]) +
                                        " m/s is not in [0, 10]");
        }
    }
    for (int64_t q = 0; q < k; ++q) {
        const int64_t s = slot_of_[ids[q]];
        v0_[s] = static_cast<float>(speed[q]);
        max_v0_ = std::max(max_v0_, v0_[s]);  // the neighbour lists' displacement bound never shrinks
    }
    lists_valid_ = false;
}

void CrowdSim::set_start_time(int64_t k, const int64_t* ids, const double* start_time) {
    check_ids(k, ids, n_);
    for (int64_t q = 0; q < k; ++q) {
        if (!std::isfinite(start_time[q])) {
            throw std::invalid_argument("start_time[" + std::to_string(q) + "] = " +
                                        std::to_string(start_time[q]) + " is not a finite number of seconds");
        }
    }
    for (int64_t q = 0; q < k; ++q) start_time_[slot_of_[ids[q]]] = static_cast<float>(start_time[q]);
    lists_valid_ = false;
}

void CrowdSim::set_fields(const std::vector<const double*>& fields) {
    const int nf = static_cast<int>(fields.size());
    for (int64_t i = 0; i < n_; ++i) {
        if (field_[i] >= nf) {
            throw std::invalid_argument("agent " + std::to_string(id_of_[i]) + " follows field " +
                                        std::to_string(field_[i]) + " but only " + std::to_string(nf) +
                                        " fields were given");
        }
    }
    const std::size_t cells = nav_.size();
    for (int f = 0; f < nf; ++f) {
        for (std::size_t c = 0; c < cells; ++c) {
            const double v = fields[f][c];
            if (std::isnan(v) || v < 0) {
                const int ix = static_cast<int>(c % g_.nx), iy = static_cast<int>((c / g_.nx) % g_.ny),
                          l = static_cast<int>(c / (static_cast<std::size_t>(g_.nx) * g_.ny));
                throw std::invalid_argument("fields[" + std::to_string(f) + "]" + cell_str(l, iy, ix) +
                                            " = " + num(v) + " must be a distance >= 0 or inf");
            }
        }
    }
    std::vector<std::vector<int16_t>> dirs(nf);
    std::vector<std::vector<uint8_t>> via(nf);
    std::vector<double> grad(2 * cells);
    for (int f = 0; f < nf; ++f) {
        nav_.gradient(fields[f], grad.data());
        dirs[f].resize(2 * cells);
        for (std::size_t c = 0; c < 2 * cells; ++c)
            dirs[f][c] = static_cast<int16_t>(std::lround(grad[c] * 32767.0));
        // The way from a stair end goes over the stair if the end's cell is a local minimum of the field on
        // its level (no descent direction: it is reached through the stair) and the other end is lower.
        via[f].assign(2 * stairs_.size(), 0);
        for (std::size_t s = 0; s < stairs_.size(); ++s) {
            const Stair& st = stairs_[s];
            std::size_t c[2];
            for (int e = 0; e < 2; ++e) {
                int iy = 0, ix = 0;
                locate(st.end[e][0], st.end[e][1], st.level[e], iy, ix);
                c[e] = flat(st.level[e], iy, ix);
            }
            for (int e = 0; e < 2; ++e) {
                const double here = fields[f][c[e]], there = fields[f][c[1 - e]];
                const bool minimum = grad[2 * c[e]] == 0.0 && grad[2 * c[e] + 1] == 0.0;
                via[f][2 * s + e] = (std::isfinite(there) && there < here && minimum) ? 1 : 0;
            }
        }
    }
    fields_ = std::move(dirs);
    lists_valid_ = false;
    for (int64_t i = 0; i < n_; ++i) dir_[2 * i] = INT16_MIN;  // re-sampled at the next substep
    via_stair_ = std::move(via);
}

void CrowdSim::counts(int64_t out[4]) const {
    out[0] = out[1] = out[2] = out[3] = 0;
    const int8_t* st = state_.data();
    for (int64_t i = 0; i < n_; ++i) ++out[st[i]];
}

// The serial phase of a substep, after the parallel kernel wrote the next state: agents at the far end of a
// stair step off when the landing is free (in order of arrival, then id), then waiting agents enter stairs
// with free capacity (in order of arrival at the entry, then id).
void CrowdSim::stair_phase(bool entries) {
    double* pn = pos_[1].data();
    double* vn = vel_[1].data();
    int8_t* state = state_.data();
    int32_t* stair_index = stair_index_.data();
    int32_t* queue = queue_since_.data();
    int16_t* pending = pending_.data();
    int8_t* stair_end = stair_end_.data();
    const float* radius = radius_.data();

    order_.clear();
    for (const int64_t i : stair_req_) {
        if (state[i] == kCrowdOnStair && queue[i] >= 0) order_.emplace_back(queue[i], id_of_[i]);
    }
    std::sort(order_.begin(), order_.end());
    for (const auto& qi : order_) {
        const int64_t i = slot_of_[qi.second];
        Stair& st = stairs_[stair_index[i]];
        const int to = 1 - stair_end[i];
        const int l = st.level[to];
        const double perp[2] = {-st.axis[1], st.axis[0]};
        double qx = st.end[to][0] + stair_off_[i] * perp[0];
        double qy = st.end[to][1] + stair_off_[i] * perp[1];
        int iy = 0, ix = 0;
        if (!locate(qx, qy, l, iy, ix) || !(cell_info_[flat(l, iy, ix)] & kWalkBit) ||
            !move_allowed(l, st.end[to][0], st.end[to][1], qx, qy, nullptr, 0.0)) {
            qx = st.end[to][0];
            qy = st.end[to][1];
        }
        // Free landing: no floor agent (at its new position) overlaps, among those in the index (which holds
        // positions up to a step old: each moved at most grid_move_ per substep since) and those that came
        // off a stair since it was built (this phase's included).
        const double ri = radius[i];
        bool free = true;
        for_each_floor_run(l, qx, qy, ri + max_radius_ + nsub_ * grid_move_,
                           [&](const int32_t* a, const int32_t* b) {
                               for (; a < b && free; ++a) {
                                   const int64_t j = *a;
                                   if (state[j] != kCrowdWaiting && state[j] != kCrowdWalking) continue;
                                   const double dx = pn[2 * j] - qx, dy = pn[2 * j + 1] - qy;
                                   if (std::hypot(dx, dy) < ri + radius[j]) free = false;
                               }
                           });
        for (const int32_t j : joined_) {
            if (!free) break;
            if (level_[j] != l || (state[j] != kCrowdWaiting && state[j] != kCrowdWalking)) continue;
            if (std::hypot(pn[2 * j] - qx, pn[2 * j + 1] - qy) < ri + radius[j]) free = false;
        }
        if (!free) continue;
        pn[2 * i] = qx;
        pn[2 * i + 1] = qy;
        vn[2 * i] = vn[2 * i + 1] = 0.0;
        level_[i] = l;
        z_[i] = static_cast<float>(g_.level_z[l]);
        state[i] = kCrowdWalking;
        dir_[2 * i] = INT16_MIN;
        stair_index[i] = -1;
        stair_end[i] = -1;
        queue[i] = -1;
        pending[i] = -1;
        stuck_[i] = 0.0f;
        --st.on;
        joined_.push_back(static_cast<int32_t>(i));
        if (lists_ && lists_valid_) join_lists(i);
    }

    if (!entries) return;  // (entry requests are made after a step's last substep)
    order_.clear();
    for (const int64_t i : stair_req_) {
        if (state[i] == kCrowdWalking && pending[i] >= 0) order_.emplace_back(queue[i], id_of_[i]);
    }
    std::sort(order_.begin(), order_.end());
    for (const auto& qi : order_) {
        const int64_t i = slot_of_[qi.second];
        const int s = pending[i] / 2, e = pending[i] % 2;
        Stair& st = stairs_[s];
        if (st.on >= st.capacity) continue;
        const double perp[2] = {-st.axis[1], st.axis[0]};
        const double half = std::max(0.0, 0.5 * st.width - radius[i]);
        const double off = std::clamp(
            (pn[2 * i] - st.end[e][0]) * perp[0] + (pn[2 * i + 1] - st.end[e][1]) * perp[1], -half, half);
        state[i] = kCrowdOnStair;
        stair_index[i] = s;
        stair_end[i] = static_cast<int8_t>(e);
        stair_s_[i] = 0.0f;
        stair_off_[i] = static_cast<float>(off);
        pn[2 * i] = st.end[e][0] + off * perp[0];
        pn[2 * i + 1] = st.end[e][1] + off * perp[1];
        vn[2 * i] = vn[2 * i + 1] = 0.0;
        z_[i] = static_cast<float>(g_.level_z[st.level[e]]);
        queue[i] = -1;
        pending[i] = -1;
        stuck_[i] = 0.0f;
        ++st.on;
        ++st.entries[e];
        left_floor_ = true;
    }
}

void greedy_exit_choice(const double* t_walk, int64_t m, int64_t E, const int64_t* order,
                        const uint8_t* walking, const int32_t* current, const double* capacity,
                        double min_gain, double min_gain_s, int32_t* chosen) {
    constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
    std::vector<double> load(static_cast<std::size_t>(E), 0.0), t(static_cast<std::size_t>(E));
    for (int64_t s = 0; s < m; ++s) {
        const int64_t k = order[s];
        const int32_t c = current[k];
        const double* tw = t_walk + k * E;
        int64_t b = 0;
        for (int64_t e = 0; e < E; ++e) {
            const double q = load[e] / capacity[e];
            t[e] = std::isnan(tw[e]) || std::isnan(q) ? kNaN : std::max(tw[e], q);
        }
        for (int64_t e = 0; e < E; ++e) {  // (numpy's argmin: the first NaN, else the first minimum)
            if (std::isnan(t[e])) {
                b = e;
                break;
            }
            if (t[e] < t[b]) b = e;
        }
        bool keep = !walking[k] || !std::isfinite(t[b]);
        if (!keep && c >= 0 && c < E && std::isfinite(t[c]))
            keep = !(t[b] <= (1.0 - min_gain) * t[c] && t[b] <= t[c] - min_gain_s);
        const int64_t pick = keep ? c : b;
        chosen[k] = c;
        if (pick >= 0 && pick < E) {
            chosen[k] = static_cast<int32_t>(pick);
            load[pick] += 1.0;
        }
    }
}

}  // namespace twin
