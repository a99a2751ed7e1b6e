// CrowdSim: microscopic pedestrian dynamics on walkable rasters of several storeys linked by stairs.
//
// Two operational models advance all agents in one C++ call (step(n)):
//  * social force (Helbing & Molnar 1995; Helbing, Farkas & Vicsek 2000): m dv/dt = m (v0 e0 - v) / tau
//    + sum_j [A exp((r_ij - d_ij) / B) + k g(r_ij - d_ij)] n_ij + kappa g(r_ij - d_ij) dv_ji^t t_ij + walls,
//    integrated with semi-implicit Euler in substeps of at most `max_substep`;
//  * collision-free speed (Tordeux, Chraibi & Seyfried 2016): e = normalise(e0 + sum_j a exp((l - s_ij) / D)
//    n_ij + walls), speed = min(v0, max(0, (s - l) / T)) with s the spacing to the nearest agent ahead.
// The desired direction e0 is the descent direction of the agent's navigation field (a distance field),
// blended bilinearly across cells and never pointing into a wall. Stairs, exits, pre-movement (WAITING)
// and the hard guarantees (no agent leaves the walkable cells or crosses a wall; symmetric deadlocks are
// broken) are shared by both models.
//
// Determinism: every substep reads the old state and writes the new one (double buffer), stochastic choices
// come from a counter-based hash of (seed, agent id, counter), and the serial phases (stairs) run in a fixed
// order, so results are bitwise identical for any number of threads.
//
// Neighbours: a cell index of the agents on floors is rebuilt at every step; each agent looks as far as
// anything can act on it (contact, the repulsion's reach and its own headway). The social force's repulsion
// from an agent's neighbours is evaluated in one vectorised pass (with an own branch-free exp: the same bits
// in every lane and in every build, native or portable) and summed in the neighbours' order.
//
// Multiple time stepping (the social force model, whose body force needs 0.01 s substeps): the driving term,
// the contact forces (body force, sliding friction) and the walls are evaluated in every substep; the social
// repulsion between agents, a slow force (A = 335 N, B = 0.12 m: its time scale sqrt(m B / A) = 0.17 s),
// every social_interval (0.05 s: every fifth substep, whatever dt is), and held in between (multiple time
// stepping as in r-RESPA, Tuckerman, Berne & Martyna 1992). At such a "fresh" substep each agent also lists
// the agents that can touch it before the next (Verlet lists of the agents within contact plus twice the
// distance an agent can move in between, as 16-bit slot offsets: up to kListCap in its own slots, longer
// lists in a pool shared by all); the substeps in between test only those for contact. Agents coming off a
// stair in between are added to the lists around them; an agent whose list does not fit (or who joins in
// between) queries the index and evaluates every force in every substep. Anything that changes the agents
// (adding them, re-sorting their slots, new speeds, start times, fields or routes) makes the next substep
// fresh.
//
// Units: metres, seconds, metres per second; positions in the local frame of each level's raster.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "twin/distance_field.hpp"
#include "twin/segment_index.hpp"

namespace twin {

enum class CrowdModel : int { SocialForce = 0, CollisionFreeSpeed = 1 };

// Agent states (int8 codes shared with Python).
enum : int8_t { kCrowdWaiting = 0, kCrowdWalking = 1, kCrowdOnStair = 2, kCrowdEvacuated = 3 };

// "social_force" or "collision_free_speed"; throws std::invalid_argument naming the known models.
CrowdModel crowd_model_from_name(const std::string& name);
const char* crowd_model_name(CrowdModel model);

struct CrowdParam {
    const char* name;
    double value;
    const char* doc;  // meaning, unit and source of the default
};
// The parameters of a model with their defaults, in a fixed order.
const std::vector<CrowdParam>& crowd_default_params(CrowdModel model);

// Walkable space shared by all agents; the conventions are documented in twin/sim/crowd_space.py.
struct CrowdGeometry {
    int levels = 0, ny = 0, nx = 0;
    double cell_size = 0;
    std::vector<double> origins;       // (levels, 2) lower-left corner of cell (0, 0) per level
    std::vector<double> level_z;       // (levels,) elevation
    std::vector<uint8_t> walkable;     // (levels, ny, nx) non-zero: walkable
    std::vector<int32_t> exit_cells;   // (levels, ny, nx) -1 or exit index
    std::vector<double> walls;         // (w, 4) x0, y0, x1, y1
    std::vector<int32_t> wall_levels;  // (w,)
    std::vector<double> stairs;        // (s, 8) level_a, xa, ya, level_b, xb, yb, length_m, width_m
};

// Resolved model parameters (see crowd_default_params for meanings and defaults).
struct CrowdParams {
    // shared
    double max_substep, stuck_time, stuck_speed, stuck_window, unstick_time, unstick_angle, stair_density,
        range_cutoff;
    // social force
    double mass, tau, agent_strength, agent_range, anisotropy, body_force, friction, wall_strength,
        wall_range, wall_body_force, wall_friction, speed_cap, social_interval;
    // collision-free speed
    double time_gap, cone_angle, unstick_shrink, unstick_shrink_max, cfs_agent_strength, cfs_agent_range,
        cfs_wall_strength, cfs_wall_range;
};

// Per-agent values exported in id order (CrowdSim::read): the dtype of each is given.
enum class CrowdArray : int {
    Positions,     // (n, 2) double, metres
    Velocities,    // (n, 2) double, m/s
    Levels,        // (n,) int32
    Z,             // (n,) double, metres
    State,         // (n,) int8
    Field,         // (n,) int32
    ExitIndex,     // (n,) int32
    ExitTime,      // (n,) double, seconds (NaN until evacuated)
    StairIndex,    // (n,) int32
    DesiredSpeed,  // (n,) float, m/s
    Radius,        // (n,) float, metres
};

// Fewer agents than this: a step runs on one thread (same results; threads cost more than they save, and on a
// busy machine OpenMP's waiting threads slow a small crowd down tenfold).
inline constexpr int64_t kParallelMinAgents = 1024;

class CrowdSim {
  public:
    // Throws std::invalid_argument naming the offending argument (shape, range, unknown parameter).
    CrowdSim(CrowdModel model, double dt, uint64_t seed, CrowdGeometry geometry,
             const std::vector<std::pair<std::string, double>>& params);
    ~CrowdSim();
    CrowdSim(const CrowdSim&) = delete;
    CrowdSim& operator=(const CrowdSim&) = delete;

    // Replaces the navigation fields: each a (levels, ny, nx) distance array (inf = unreachable).
    // Directions are precomputed here. Throws if an agent refers to a field index >= fields.size().
    void set_fields(const std::vector<const double*>& fields);

    // Adds n agents; returns the id of the first (ids are consecutive). Throws std::invalid_argument naming
    // the first bad agent index (non-walkable cell, unknown level or field, bad speed or radius).
    int64_t add_agents(int64_t n, const double* positions, const int32_t* levels, const double* desired_speed,
                       const double* radius, const double* start_time, const int32_t* field,
                       const double* stair_up_speed, const double* stair_down_speed);

    // Re-routes agents (exit choice): field[k] for agent ids[k]. Throws naming the first bad entry.
    void set_field_of(int64_t k, const int64_t* ids, const int32_t* field);

    // Hazards and alarms: desired walking speed (m/s, in [0, 10]) and the time the agent starts moving (s) of
    // agent ids[k]. A start time in the past starts a waiting agent at the next step; walking agents keep
    // walking. Throws naming the first bad entry; nothing is changed then.
    void set_desired_speed(int64_t k, const int64_t* ids, const double* speed);
    void set_start_time(int64_t k, const int64_t* ids, const double* start_time);

    // Advances n steps of dt. Never call concurrently with anything else on this object.
    void step(int64_t n);

    CrowdModel model() const { return model_; }
    double dt() const { return dt_; }
    uint64_t seed() const { return seed_; }
    double time() const { return static_cast<double>(step_count_) * dt_; }
    int64_t step_count() const { return step_count_; }
    int64_t n_agents() const { return n_; }
    int n_fields() const { return static_cast<int>(fields_.size()); }
    int substeps() const { return nsub_; }
    const std::vector<std::pair<std::string, double>>& params() const { return param_list_; }
    int levels() const { return g_.levels; }
    int ny() const { return g_.ny; }
    int nx() const { return g_.nx; }
    int64_t n_stairs() const { return static_cast<int64_t>(stairs_.size()); }
    int64_t stair_capacity(int64_t s) const { return stairs_[s].capacity; }
    // Agents that have entered stair s at its foot (end 0, going up) or its head (end 1, going down).
    int64_t stair_entries(int64_t s, int end) const { return stairs_[s].entries[end]; }

    // Counts of agents per state: waiting, walking, on_stair, evacuated.
    void counts(int64_t out[4]) const;

    // Bytes of per-agent state (all columns, the double buffers, the neighbour index and the neighbour lists)
    // per agent.
    static double state_bytes_per_agent();
    // Bytes of the shared pool of long neighbour lists (dense crowds; not in state_bytes_per_agent).
    int64_t list_pool_bytes() const { return static_cast<int64_t>(pool_.capacity() * sizeof(int16_t)); }

    // Writes one per-agent array in id order to `out` (n_agents() rows, dtype as listed in CrowdArray).
    void read(CrowdArray what, void* out) const;

    struct Stair {
        int level[2];      // [0] foot (level_a), [1] head (level_b)
        double end[2][2];  // end points (x, y)
        double length, width;
        double axis[2];  // unit horizontal direction foot -> head (0, 0 if the ends coincide in plan)
        int64_t capacity;
        double zone;                  // radius of the entry zone around each end: max(width / 2, cell_size)
        int64_t on = 0;               // agents on the stair now
        int64_t entries[2] = {0, 0};  // agents that entered at the foot (going up) / at the head (going down)
    };

    // Per-thread buffers of the step kernels (kept between steps: no allocation in the step loop).
    struct WallHit {
        double cx, cy, d;
        int32_t seg;
        bool end;  // the closest point is an end point of the segment
    };
    // The first values of a floor agent's update (see prepare_agent).
    struct Pre {
        double ex, ey;    // desired direction (unit, or 0 without one)
        int iy, ix;       // raster cell
        bool walking;     // a floor agent that moves in this substep
        bool first_walk;  // its direction was unset
    };
    // (Each on its own cache lines: the threads update their vectors' ends all the time.)
    struct alignas(128) Scratch {
        std::vector<double> nb;     // per neighbour: dx, dy, dist, l, j
        std::vector<int64_t> cand;  // the candidates kept by add_ids' first pass
        std::vector<int32_t> ids;   // the candidates from the index's runs, gathered for one pass
        std::vector<double> close;  // the same for those that can slow an agent (collision-free speed)
        std::vector<double> touch;  // ... and for those that can limit its move
        std::vector<double> soc;    // social force pass: columns dx, dy, dist, l_ij; out: its force's x, y
        std::vector<WallHit> hits;
        std::vector<int64_t> evacuated;  // agents that left through an exit in this substep
        std::vector<int64_t> stair;      // agents at a stair end, or asking to enter a stair
        std::vector<Pre> pre;            // (kBlock,) for the block of agents being updated
    };

  private:
    template <CrowdModel M>
    void substep(double t, double h, int k, bool last);
    template <CrowdModel M>
    void update_agent(int64_t i, double t, double h, int sub, bool last, const Pre& pre, Scratch& sc);
    void prepare_agent(int64_t i, double t, int sub, Pre& p);
    static constexpr int64_t kBlock = 32;  // agents prepared together
    void stair_phase(bool entries);
    int deadlocked(double t, int l, double x, double y, double ex, double ey, double r, const double* nb,
                   std::size_t nn, double complete) const;
    static constexpr int64_t kAhead = 6;  // agents to look ahead for cache hints
    void prefetch_agent(int64_t i, bool field) const;
    void build_floor_index();
    void sync_evacuated();
    void join_lists(int64_t i);
    void ensure_wall_bins(double radius);
    void ensure_ready();
    void grow(int64_t n);
    void reorder();

    // Calls visit(first, last) for the runs of floor-index entries (slots) in the index cells overlapping the
    // disc of radius r around (x, y) on `level`, row by row (a superset of the floor agents whose position at
    // the index build was within r of (x, y)). (Each row's span is that of the disc's chord over the row's
    // band, widened by a margin far above rounding.)
    template <typename Visit>
    void for_each_floor_run(int level, double x, double y, double r, Visit&& visit) const {
        const double x0 = g_.origins[2 * level], y0 = g_.origins[2 * level + 1];
        const double cell = 1.0 / finv_, pad = 1e-9 * (1.0 + r);
        const int cy0 = floor_axis((y - r - y0) * finv_, fny_), cy1 = floor_axis((y + r - y0) * finv_, fny_);
        const int32_t* ids = fids_.data();
        for (int cy = cy0; cy <= cy1; ++cy) {
            // Distance from y to the row's band [y0 + cy cell, y0 + (cy + 1) cell) (0 inside; the outer
            // rows of the clamped index reach to infinity).
            const double lo = cy == 0 ? -std::numeric_limits<double>::infinity() : y0 + cy * cell;
            const double hi = cy == fny_ - 1 ? std::numeric_limits<double>::infinity() : y0 + (cy + 1) * cell;
            const double dy = std::max({0.0, lo - y, y - hi});
            const double w = dy < r ? std::sqrt((r - dy) * (r + dy)) + pad : pad;
            const int cx0 = floor_axis((x - w - x0) * finv_, fnx_),
                      cx1 = floor_axis((x + w - x0) * finv_, fnx_);
            const std::size_t row = (static_cast<std::size_t>(level) * fny_ + cy) * fnx_;
            visit(ids + fstart_[row + cx0], ids + fstart_[row + cx1 + 1]);
        }
    }
    // Index cell along one axis of a coordinate u in cells (clamped to [0, cells), NaN-safe).
    static int floor_axis(double u, int cells) {
        if (!(u > 0)) return 0;
        return u < cells ? std::min(static_cast<int>(u), cells - 1) : cells - 1;
    }

    // Geometry helpers.
    std::size_t flat(int level, int iy, int ix) const {
        return (static_cast<std::size_t>(level) * g_.ny + iy) * g_.nx + ix;
    }
    // The cell containing (x, y) on a level (DistanceField's convention, borders x0 + i * h as float64).
    // (u, v are only a first guess, corrected to the float64 borders below: the multiplication by the inverse
    // cell size gives the same cells as a division.)
    bool locate(double x, double y, int level, int& iy, int& ix) const {
        const double x0 = g_.origins[2 * level], y0 = g_.origins[2 * level + 1], h = g_.cell_size;
        const double u = (x - x0) * inv_cell_, v = (y - y0) * inv_cell_;
        if (!(u > -2.0 && u < g_.nx + 2.0 && v > -2.0 && v < g_.ny + 2.0)) return false;  // also NaN
        int i = static_cast<int>(std::floor(u)), j = static_cast<int>(std::floor(v));
        if (x0 + (i + 1) * h <= x) {
            ++i;
        } else if (x0 + i * h > x) {
            --i;
        }
        if (y0 + (j + 1) * h <= y) {
            ++j;
        } else if (y0 + j * h > y) {
            --j;
        }
        if (i < 0 || i >= g_.nx || j < 0 || j >= g_.ny) return false;
        iy = j;
        ix = i;
        return true;
    }
    bool walkable_at(int level, int iy, int ix) const {
        return iy >= 0 && iy < g_.ny && ix >= 0 && ix < g_.nx && (cell_info_[flat(level, iy, ix)] & kWalkBit);
    }
    void nav_direction(int field, int level, double x, double y, double& ex, double& ey) const;
    bool move_allowed(int level, double px, double py, double qx, double qy, double* tangent,
                      double clearance) const;
    bool move_allowed(int level, double px, double py, double qx, double qy, double* tangent,
                      double clearance, const int32_t* walls,
                      int32_t n_walls) const;  // with the walls near p given
    void clamp_move(int level, double px, double py, double& qx, double& qy, double clearance) const;
    void clamp_move(int level, double px, double py, double& qx, double& qy, double clearance,
                    const int32_t* walls, int32_t n_walls) const;
    template <typename Emit>
    void for_each_wall(const int32_t* walls, int32_t n_walls, double x, double y, double cutoff, Scratch& sc,
                       Emit&& emit) const;
    // The walls near the raster cell (iy, ix) of a level: those listed for the bin holding it. (The same
    // walls, in the same order, matter as in wall_list for any point of the cell: bins list, sorted by id,
    // every wall within a radius of any point of the bin.)
    const int32_t* wall_list_cell(int level, int iy, int ix, int32_t& count) const {
        count = 0;
        if (bin_offsets_.empty()) return nullptr;
        const std::size_t b =
            (static_cast<std::size_t>(level) * nby_ + bin_of_row_[iy]) * nbx_ + bin_of_col_[ix];
        count = static_cast<int32_t>(bin_offsets_[b + 1] - bin_offsets_[b]);
        return bin_walls_.data() + bin_offsets_[b];
    }
    // The walls near (x, y) on a level: those listed for its bin (see ensure_wall_bins).
    const int32_t* wall_list(int level, double x, double y, int32_t& count) const {
        count = 0;
        if (bin_offsets_.empty()) return nullptr;
        const double bs = bin_cells_ * g_.cell_size;
        const double u = (x - g_.origins[2 * level]) / bs, v = (y - g_.origins[2 * level + 1]) / bs;
        const int bx = std::clamp(static_cast<int>(std::floor(u)), 0, nbx_ - 1);
        const int by = std::clamp(static_cast<int>(std::floor(v)), 0, nby_ - 1);
        const std::size_t b = (static_cast<std::size_t>(level) * nby_ + by) * nbx_ + bx;
        count = static_cast<int32_t>(bin_offsets_[b + 1] - bin_offsets_[b]);
        return bin_walls_.data() + bin_offsets_[b];
    }

    CrowdModel model_;
    double dt_;
    uint64_t seed_;
    CrowdGeometry g_;
    CrowdParams p_{};
    double inv_tau_ = 1, inv_agent_range_ = 1, inv_wall_range_ = 1;  // 1 / p_'s tau, agent_range, wall_range
    std::vector<std::pair<std::string, double>> param_list_;
    int nsub_ = 1;
    double cone_cos_ = 0;
    DistanceField nav_;  // the walkable raster; computes per-cell descent directions of the fields
    std::vector<Stair> stairs_;
    double inv_cell_ = 1;  // 1 / cell_size
    // Per cell (levels, ny, nx): bit 0 walkable, bit 1 in the entry zone of a stair end, bits 2-15 exit index
    // + 1.
    static constexpr uint16_t kWalkBit = 1, kZoneBit = 2;
    std::vector<uint16_t> cell_info_;
    std::vector<std::vector<int32_t>> stair_ends_;    // per level: 2 * stair + end of the ends on it
    std::vector<std::pair<int32_t, int64_t>> order_;  // stair phase: (arrival substep, id)
    std::vector<int64_t>
        stair_req_;  // stair phase: the agents of Scratch::stair (a superset of those it moves)

    // Navigation fields: per field, 2 int16 per cell (unit descent direction x 32767), and per stair and end
    // a flag telling whether the field's way from that end goes over the stair.
    std::vector<std::vector<int16_t>> fields_;
    std::vector<std::vector<uint8_t>> via_stair_;  // [field][2 * stair + end]

    // Walls: segments, and per bin (a square of bin_cells_ raster cells) the walls within wall_radius_.
    std::unique_ptr<SegmentIndex2D> wall_index_;
    int bin_cells_ = 5, nbx_ = 0, nby_ = 0;
    double wall_radius_ = -1;
    std::vector<int32_t> bin_of_col_, bin_of_row_;  // (nx,), (ny,): bin of each raster column and row
    std::vector<int64_t> bin_offsets_;
    std::vector<int32_t> bin_walls_;

    // Agents: structure of arrays in slot order, re-sorted by grid cell about once a simulated second so that
    // the agents processed together are close in memory (ids stay stable: id_of_ and slot_of_ map them).
    int64_t n_ = 0;
    std::vector<double> pos_[2], vel_[2];  // (n, 2) each; [0] current, [1] next (double buffer)
    std::vector<double> exit_time_;
    std::vector<float> z_, start_time_;
    std::vector<int32_t> level_, field_, exit_index_, stair_index_, queue_since_, unstick_, id_of_, slot_of_;
    std::vector<int16_t> pending_;  // 2 * stair + end of a requested stair entry, or -1
    std::vector<int16_t> dir_;      // (n, 2) desired direction of the current step, x 32767; INT16_MIN: unset
    std::vector<int8_t> state_;
    std::vector<int8_t> stair_end_;  // end a stair was entered from (0 foot, 1 head), else -1
    std::vector<float> v0_, radius_, up_, down_, stair_s_, stair_off_, stuck_, progress_;
    bool reorder_pending_ = false;
    float max_radius_ = 0, max_v0_ = 0;

    // Floor index: the agents on floors (WAITING, WALKING) bucketed by square cells of 1 / finv_ metres per
    // level (a counting sort, slot order within a cell), built from the positions at the start of every step.
    double cut_ = 1;        // centre distance within which agents interact (both models' reach)
    double grid_move_ = 0;  // largest displacement of a floor agent in one substep
    double finv_ = 1;
    int fnx_ = 1, fny_ = 1;
    std::vector<uint32_t> fstart_;  // (levels * fny_ * fnx_ + 2,) first index of each cell in fids_
    std::vector<int32_t> fids_;     // (n,) floor agents' slots by cell, then the others (reorder's order)
    // Contact lists (the social force model's multiple time stepping): per floor agent, up to kListCap slots
    // (as int16 offsets from its own) of the floor agents within r_i + r_j + skin_ of it at the last fresh
    // substep, where skin_ bounds how much closer two agents can come before the next: every agent it can
    // touch in the substeps in between. Agents arriving from a stair are appended (join_lists). An agent
    // whose neighbours do not fit (far slots, a full pool) queries the index every substep instead.
    static constexpr int kListCap = 12;
    static constexpr uint8_t kListOverflow = 255;
    static constexpr uint8_t kListPooled = 254;  // the list is in pool_ (offset: slots 0-1, count: slot 2)
    double skin_ = 0;
    bool lists_ = false;           // the lists (and social_) are in use
    bool fresh_ = false;           // this substep evaluates the social repulsion and makes the lists
    bool lists_valid_ = false;     // the lists and social_ hold for the agents as they are (see fresh_)
    int social_every_ = 1;         // substeps from one fresh substep to the next
    int since_fresh_ = 0;          // substeps since the last fresh one
    bool left_floor_ = false;      // an agent left the floors since the lists were made: check states
    std::vector<int16_t> list_;    // (n, kListCap); also the scratch of reorder (which makes them invalid)
    std::vector<uint8_t> list_n_;  // (n,) entries in use, or kListOverflow, or kListPooled
    // Longer lists (dense crowds), filled at a fresh substep in any order (an atomic counter); grown before
    // the next fresh substep to what the last one asked for, never shrunk. Scratch: its size follows the
    // densest neighbourhoods, printed by the bench.
    std::vector<int16_t> pool_;
    uint64_t pool_used_ = 0;
    // (n, 2) the social repulsion on each listed agent, evaluated at the last fresh substep (lists_ only).
    std::vector<float> social_;
    std::vector<int32_t> joined_;     // slots that came off a stair onto a floor since the index was built
    std::vector<int64_t> evacuated_;  // left through an exit in the last substep: both buffers made final
    std::vector<Scratch> scratch_;

    int64_t step_count_ = 0;
    int64_t substep_count_ = 0;
};

// Exit choice, one agent after the other in `order` (m,): agent k expects to pass exit e at max(t_walk[k, e],
// load[e] / capacity[e]), load[e] the agents that chose e before it in this pass; it takes the quickest,
// unless it is not walking (walking[k] == 0), nothing is reachable, or its current exit (current[k] < E) is
// not at least min_gain (relative) and min_gain_s quicker to leave than (hysteresis). chosen[k]: its exit, or
// current[k] if that is no exit (>= E) and nothing better was taken. NaN compares as numpy's argmin does (the
// first NaN wins). t_walk: (m, E) row-major.
void greedy_exit_choice(const double* t_walk, int64_t m, int64_t E, const int64_t* order,
                        const uint8_t* walking, const int32_t* current, const double* capacity,
                        double min_gain, double min_gain_s, int32_t* chosen);

}  // namespace twin
