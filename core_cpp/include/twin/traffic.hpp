// TrafficSim: microscopic road traffic on a lane-level network (lanes joined by links through junctions).
//
// Car following is the Intelligent Driver Model (Treiber, Hennecke & Helbing 2000)
//   a = a_max [1 - (v / v0)^delta - (s* / s)^2],  s* = s0 + max(0, v T + v dv / (2 sqrt(a_max b)))
// with v0 = min(segment speed x speed factor, max speed), s0 = minGap, T = tau, integrated as SUMO's IDM does
// (internal Euler iterations of `idm_stepping` with the leader's speed held, then x' = x + v' dt). A final
// clamp keeps every vehicle within the gap to whatever is ahead of it (leader's rear, stop line), so vehicles
// following one another never overlap. Leaders are searched along each vehicle's planned path through the
// links ahead (lookahead: braking distance + `lookahead`). Junctions: fixed-time signals (SUMO state
// characters), priority/yield at unsignalised junctions and at 'g' with gap acceptance by time (impatience
// lowers the critical gap while waiting), keep-clear (no entry into a junction whose exit lane has no room).
// Lane changes: strategic (the route's next edge needs a lane with a link to it) and MOBIL (Kesting, Treiber
// & Helbing 2007) for speed with a keep-right bias; safe gaps to the new leader and follower. Actuated
// signals: gap-based (SUMO's type="actuated": emulated induction loops detector_gap before the stop line; a
// green phase ends after min_dur once no vehicle was detected for max_gap, at max_dur at the latest).
// Emergency vehicles (priority 1): pass red lights slowly and only with the conflicting paths clear; others
// do not enter across their path when they are about to arrive, and clear a rescue lane ahead of them.
//
// Junction decisions are taken in two passes: every vehicle first decides on the old state whether it enters
// the next junction (decide_phase), then moves knowing who else goes this step: vehicles merging into one
// lane follow the one nearer to it (ties: the lower id), and a yielding link waits for foes that start at the
// same moment (a light turning green). A move onto a new segment that would still overlap a vehicle entering
// it from elsewhere is taken back (counted; a safety net, rare). A vehicle's rear lies in the junction path
// it came through only.
//
// Determinism: each step first sorts the running vehicles by (segment, position, id) with a stable counting
// sort (segments: lanes 0..nl-1, then links), then every parallel phase reads the old state and writes the
// new one (double buffer); lane changes to the left happen on even steps, to the right on odd steps, so two
// vehicles never change into the same lane from two sides at once. Random draws (speed factors) use a
// counter-based hash of (seed, vehicle id). Results are bitwise identical for any number of threads.
//
// Units: metres, seconds, m/s. A vehicle's position is its front bumper's distance from the start of its lane
// or link (SUMO's convention).
#pragma once

#include <algorithm>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace twin {

// Vehicle states (int8 codes shared with Python).
enum : int8_t { kVehPending = 0, kVehRunning = 1, kVehArrived = 2 };

// The compiled road network (see TRAFFIC_DESIGN.md, "Network arrays"). Ids are row indices.
struct TrafficNetwork {
    // lanes (nl)
    std::vector<int32_t> lane_edge, lane_index;
    std::vector<double> lane_length, lane_speed;
    std::vector<uint8_t> lane_allow;          // 1: passenger cars may use the lane
    std::vector<int64_t> lane_shape_offsets;  // (nl + 1)
    std::vector<double> lane_shape_xy;        // (p, 2)
    // edges (ne)
    std::vector<int64_t> edge_lane_offsets;  // (ne + 1), lanes of an edge are consecutive rows
    std::vector<double> edge_length;
    // links (nk)
    std::vector<int32_t> link_from_lane, link_to_lane;
    std::vector<double> link_length, link_speed;
    std::vector<uint8_t> link_dir;
    std::vector<int32_t> link_junction, link_tls, link_tls_index;
    std::vector<uint8_t> link_major;
    std::vector<int64_t> link_foe_offsets;  // (nk + 1)
    std::vector<int32_t> link_foes;
    std::vector<int64_t> lane_link_offsets;  // (nl + 1)
    std::vector<int32_t> lane_links;
    // signals (nt programmes, np phases, ns state characters)
    std::vector<double> tls_offset;
    std::vector<int64_t> tls_phase_offsets;  // (nt + 1)
    std::vector<double> phase_duration, phase_min, phase_max;
    std::vector<int64_t> phase_state_offsets;  // (np + 1)
    std::vector<uint8_t> phase_state;
    std::vector<uint8_t> tls_actuated;
};

struct TrafficParam {
    const char* name;
    double value;
    const char* doc;  // meaning, unit and source of the default
};
// The model parameters with their defaults, in a fixed order.
const std::vector<TrafficParam>& traffic_default_params();

// Per-vehicle arrays exported in id order (TrafficSim::read); the dtype of each is given.
enum class TrafficArray : int {
    State,        // int8
    Lane,         // int32, -1 when not on a lane (pending, arrived, inside a junction)
    Link,         // int32, -1 when not inside a junction
    Pos,          // double, metres from the start of the lane or link (front bumper)
    Speed,        // double, m/s
    RouteIndex,   // int32, index of the current edge in the route
    DepartTime,   // double, seconds (actual insertion; NaN while pending)
    ArrivalTime,  // double, seconds (NaN until arrived)
    TimeLoss,     // double, seconds (SUMO timeLoss)
    WaitingTime,  // double, seconds at speed < stop_speed
    Distance,     // double, metres driven
    LaneChanges,  // int32
    SpeedFactor,  // double, the vehicle's speed factor (drawn from the type's speed_factor and speed_dev)
};

class TrafficSim {
  public:
    // Throws std::invalid_argument naming the offending array or parameter.
    TrafficSim(TrafficNetwork net, double dt, uint64_t seed,
               const std::vector<std::pair<std::string, double>>& params);

    // Adds t vehicle types (SUMO vType semantics); returns the id of the first.
    int32_t add_vehicle_types(int64_t t, const double* length, const double* min_gap, const double* accel,
                              const double* decel, const double* emergency_decel, const double* tau,
                              const double* max_speed, const double* speed_factor, const double* speed_dev,
                              const double* delta);

    // Adds n vehicles; routes as CSR over edges (route_offsets has n + 1 entries, route_offsets[0] == 0).
    // depart_lane -1: the best free lane; depart_speed < 0: the largest safe speed up to the lane's;
    // depart_pos < 0: SUMO's "base" (front bumper at the vehicle length). Returns the id of the first
    // vehicle. Throws naming the first bad vehicle (unknown type, bad route, unconnected consecutive edges,
    // ...).
    int64_t add_vehicles(int64_t n, const double* depart_s, const int32_t* type, const int64_t* route_offsets,
                         const int32_t* route_edges, const int32_t* depart_lane, const double* depart_speed,
                         const int8_t* priority, const double* depart_pos);

    // Advances n steps of dt. Never call concurrently with anything else on this object.
    void step(int64_t n);

    void set_edge_closed(int64_t k, const int32_t* edges, bool closed);
    // Replaces the remaining route of vehicles ids[j] by route j (CSR); each must start with the vehicle's
    // current edge (for a pending vehicle: its departure edge).
    void set_route(int64_t k, const int64_t* ids, const int64_t* route_offsets, const int32_t* route_edges);

    double dt() const { return dt_; }
    uint64_t seed() const { return seed_; }
    double time() const { return static_cast<double>(step_count_) * dt_; }
    int64_t step_count() const { return step_count_; }
    int64_t n_vehicles() const { return n_; }
    int64_t n_types() const { return static_cast<int64_t>(types_.size()); }
    int64_t collisions() const { return collisions_; }
    int64_t teleports() const { return static_cast<int64_t>(tele_id_.size()); }
    // Moves taken back because two vehicles entered the same place from different directions in one step.
    int64_t taken_back() const { return taken_back_; }
    // Teleports so far (SUMO's jam teleport): time (s), vehicle id, segment it left (lanes 0..nl-1, then
    // links nl + k), edge it was put on (-1: it left the network at the end of its route).
    const std::vector<double>& teleport_time() const { return tele_time_; }
    const std::vector<int64_t>& teleport_vehicle() const { return tele_id_; }
    const std::vector<int32_t>& teleport_from() const { return tele_from_; }
    const std::vector<int32_t>& teleport_to() const { return tele_to_; }
    // Collisions so far: time (s), the vehicle whose front overlapped, the vehicle it ran into, its segment.
    const std::vector<double>& collision_time() const { return coll_time_; }
    const std::vector<int64_t>& collision_vehicle() const { return coll_id_; }
    const std::vector<int64_t>& collision_other() const { return coll_other_; }
    const std::vector<int32_t>& collision_segment() const { return coll_seg_; }
    int64_t n_lanes() const { return nl_; }
    int64_t n_edges() const { return ne_; }
    int64_t n_links() const { return nk_; }
    int64_t n_tls() const { return nt_; }
    const std::vector<std::pair<std::string, double>>& params() const { return param_list_; }

    // Counts of vehicles: pending (not yet inserted), running, arrived.
    void counts(int64_t out[3]) const;
    // Writes one per-vehicle array in id order (n_vehicles() rows, dtype as listed in TrafficArray).
    void read(TrafficArray what, void* out) const;
    // (n, 2) xy of each running vehicle's front bumper on the lane shapes (NaN when not running).
    void positions(double* out) const;
    // Per edge: vehicles that entered it (inserted or through a link), sum of speed samples (m/s) and number
    // of samples (one per vehicle on the edge per step). reset: zero the counters after reading.
    void edge_stats(int64_t* entered, double* speed_sum, int64_t* samples, bool reset);
    // Current signal state character of every link ('G', 'g', 'y', 'r', ...; 'M' major / 'm' minor when the
    // link has no signal); current phase (row into the phase arrays) of every programme.
    void link_states(uint8_t* out) const;
    void tls_phases(int32_t* out) const;

    // Per-thread-free parameters resolved from the list (see traffic_default_params).
    struct Params {
        double lookahead, idm_stepping, critical_gap, min_critical_gap, impatience, lc_politeness,
            lc_threshold, lc_safe_decel, lc_bias_right, lc_cooldown, lc_interval, keep_clear, stop_speed,
            strategic_urgency, startup_delay, actuated_max_gap, actuated_detector_gap, emergency_red_speed,
            emergency_yield_time, emergency_yield_distance, parallel_min, best_lanes_horizon,
            time_to_teleport;
    };
    struct Type {
        double length, min_gap, accel, decel, emergency_decel, tau, max_speed, speed_factor, speed_dev, delta;
    };
    // Per-vehicle constants (one cache line).
    struct Veh {
        double length, min_gap, accel, decel, emergency_decel, tau, vmax, factor;
        double delta, two_sqrt_ab;
    };

  private:
    // Segments: 0..nl-1 lanes, nl..nl+nk-1 links.
    bool is_lane(int32_t s) const { return s < nl_; }
    int32_t seg_begin(int32_t s) const { return seg_start_[s]; }
    int32_t seg_end(int32_t s) const { return seg_start_[s + 1]; }
    // Index into order_ of the first vehicle on segment s (sorted by position) whose current position is > x
    // (seg_end(s) if none).
    int32_t first_after(int32_t s, double x) const {
        const int64_t* ord = order_.data();
        const std::vector<double>& p = pos_[cur_];
        return static_cast<int32_t>(std::upper_bound(ord + seg_begin(s), ord + seg_end(s), x,
                                                     [&p](double v, int64_t j) { return v < p[j]; }) -
                                    ord);
    }
    // The link vehicle i takes from `lane` (its route at index ri): -2 the route ends here, -1 no link to the
    // next edge. score (optional): 0 none, 1 a link whose lane does not lead on, 2 a link that does, 3 route
    // ends.
    int32_t choose_link(int32_t lane, int64_t i, int32_t ri, int* score = nullptr) const;
    void swap_deadlocked();
    // Vehicle i's cached plan on its current lane (recomputed when the lane or route index changes), SUMO's
    // "best lanes": over the route ahead (up to best_lanes_horizon metres) the route index up to which each
    // lane of the edge leads on without a lane change; the links it takes from its lane along that
    // continuation (kChain of them, read by choose_link); `reach` (returned): route edges beyond this one it
    // reaches from its lane; `want`: the lane index it should head for (-1: none better, or not yet needed).
    void plan(int64_t i, int32_t lane, int32_t ri, int32_t& link, int& reach, int32_t& want);
    // Route edges beyond the current one reachable without a lane change from lane index l of vehicle i's
    // planned edge (after plan()); -1 for a lane cars may not use.
    int lane_reach(int64_t i, int32_t l) const {
        return l < kPlanLanes ? plan_reach_[static_cast<std::size_t>(i) * kPlanLanes + l] : plan_score_[i];
    }
    // Distance from the start of lane index l (planned edge of vehicle i) to the end of its continuation.
    double lane_end(int64_t i, int32_t l) const {
        return l < kPlanLanes ? plan_lane_end_[static_cast<std::size_t>(i) * kPlanLanes + l] : plan_end_[i];
    }
    // Jam teleports (time_to_teleport): heads of segments that have stood for that long are moved to the next
    // edge of their route with room (SUMO's teleporting), or leave the network at the end of the route.
    void teleport_phase(double t);
    // Vehicle id on route index r of its route at the start of a lane of that edge; false when no lane has
    // room.
    bool try_place(int64_t id, double t, int32_t r, bool teleport);
    bool lane_reaches(int32_t lane, int32_t edge) const;
    bool edges_connected(int32_t a, int32_t b) const;
    double v0_on(int64_t i, int32_t seg) const;
    double idm_speed(const Veh& p, double v, double v0, double gap, double vl, bool min_gap) const;
    double idm_accel(const Veh& p, double v, double v0, double gap, double vl) const;
    // Nearest vehicle ahead of (lane, x) along vehicle i's plan (only vehicles in the sorted membership);
    // returns its id or -1 and sets gap (net, metres) and its speed. Junction rules are not applied.
    int64_t path_leader(int64_t i, int32_t lane, double x, int32_t ri, double& gap, double& vl) const;
    // Whether vehicle i may enter link k now (d: distance of its front to the stop line; first: the next
    // junction on its way, where yield rules apply). careful (optional): set for an emergency vehicle that
    // may pass a red light only at emergency_red_speed.
    bool may_enter(int64_t i, int32_t k, double d, double v, bool first, bool* careful = nullptr) const;
    // rem: our front's distance to link k's exit lane (< 0: d + the link's length, d being to its stop line).
    bool yield_blocked(int64_t i, int32_t k, double d, double v, double rem = -1) const;
    // Whether vehicle i, d metres before the waiting point inside link k (a yielding left turn), must stop
    // there for oncoming traffic.
    bool inside_yield(int64_t i, int32_t k, double d, double v) const;
    // Emergency vehicle i passing link k against the rules (red, yield): blocked while a conflicting link is
    // occupied, a vehicle that can no longer stop is about to enter one, or another emergency vehicle comes
    // first (only_emergency: only the last two for emergency vehicles, when i has priority anyway).
    bool emergency_blocked(int64_t i, int32_t k, double d, double v, bool only_emergency) const;
    // Whether an emergency vehicle claims a link conflicting with k (it will be there within
    // emergency_yield_time).
    bool emergency_claims_conflict(int32_t k) const;
    // Serial, before the lane changes: rescue lanes and the vehicles that yield (move out of the lane) ahead
    // of each running emergency vehicle. Before the movement: the links the emergency vehicles claim.
    void emergency_lanes();
    void emergency_claims();
    bool red_for(int64_t i, int32_t k, double d, double v) const;
    // Actuated signals: time of the last detection on each detector lane (induction-loop emulation).
    void detect(double t);

    void update_signals();
    void sort_membership();
    void insert_pending(double t);
    bool try_insert(int64_t id, double t);
    void lane_change_phase();
    // Before the movement, every vehicle's decision at the first junction ahead (the link it takes and
    // whether it may enter it by the old state: signals, yield, keep clear), so that the movement can see who
    // else goes this step: merging vehicles follow one another in a fixed order, and a minor link yields to
    // foes that start at the same time (a light turning green). The movement only ever turns a go into a
    // stop.
    void decide_phase();
    void move_phase();
    // After the movement (membership sorted): moves onto a new segment that overlap another vehicle are taken
    // back (the vehicle stays where it stood, speed 0); counted in taken_back().
    void resolve_overlaps();
    void post_step();
    template <typename F>
    void for_each_overlap_beyond(int32_t s, int64_t i, F f) const;  // see traffic_step.cpp
    void grow(int64_t n);

    TrafficNetwork net_;
    double dt_;
    uint64_t seed_;
    Params p_{};
    std::vector<std::pair<std::string, double>> param_list_;
    int32_t nl_ = 0, ne_ = 0, nk_ = 0, nt_ = 0, nseg_ = 0;
    int idm_iters_ = 1;
    // Fewer running vehicles than this: the phases run on one thread (same results; parameter parallel_min).
    int64_t par_min_ = 0;

    std::vector<double> seg_len_, seg_speed_;
    std::vector<int64_t> lane_in_offsets_;  // incoming links per lane (CSR)
    std::vector<int32_t> lane_in_links_;
    std::vector<uint8_t> edge_closed_;
    std::vector<double> tls_cycle_;
    std::vector<int32_t> tls_phase_;          // current phase row per programme
    std::vector<double> tls_start_;           // start time of the current phase (actuated programmes)
    std::vector<uint8_t> phase_act_;          // phase of an actuated programme with min < max
    std::vector<int64_t> det_phase_offsets_;  // (np + 1) CSR: detector lanes of each actuated phase
    std::vector<int32_t> det_phase_lanes_;
    std::vector<int32_t> det_lanes_;          // all detector lanes
    std::vector<double> det_pos_, det_last_;  // per lane: detector position (m), last detection time (s)
    // Symmetric conflicts of each link (its foes and the links that have it as a foe), CSR.
    std::vector<int64_t> conf_offsets_;
    std::vector<int32_t> conf_links_;
    // Emergency vehicles (priority 1) by id; links they claim (time until they get there, s); their rescue
    // lane (lane index on their edge, -1 none); vehicles yielding to them (direction of the lane to move to).
    std::vector<int64_t> emerg_ids_;
    std::vector<double> claim_;
    std::vector<int32_t> claimed_;
    bool any_claim_ = false;
    std::vector<int32_t> rescue_lane_;
    std::vector<int8_t> yield_dir_;
    std::vector<int32_t> avoid_lane_;  // lane index (on its edge) a vehicle must not change into, -1 none
    std::vector<int64_t> yielders_;    // vehicles with yield_dir_ or avoid_lane_ set
    std::vector<uint8_t> careful_;  // an emergency vehicle that entered its current link against a red light
    std::vector<uint8_t> link_state_;  // current state character per link
    // Signalised left turns that yield ('g'): the point inside the junction where a vehicle waits for a gap
    // in the oncoming traffic (SUMO's internal junction), metres from the link start; -1: none.
    std::vector<double> wait_pos_;

    std::vector<Type> types_;

    // Vehicles, id order. Buffers [2]: cur_ is the state at time(), the other the next state.
    int64_t n_ = 0;
    std::vector<Veh> vp_;
    std::vector<double> depart_s_, depart_speed_, depart_pos_;
    std::vector<int32_t> route_size_, depart_lane_;
    std::vector<int64_t> route_begin_;
    std::vector<int32_t> routes_;  // all routes, CSR values
    std::vector<int8_t> priority_, state_;
    std::vector<int32_t> seg_[2], next_link_[2];
    std::vector<double> pos_[2], speed_[2];
    std::vector<uint8_t> go_[2];
    // decide_phase: the link at the first junction ahead (-1: none, or not reached before a vehicle ahead),
    // whether the vehicle may enter it, and whether only carefully (an emergency vehicle against a red
    // light).
    std::vector<int32_t> pre_link_;
    std::vector<uint8_t> pre_go_, pre_careful_;
    bool fresh_ = false;  // during move_phase: yield_blocked sees the foes' decisions of this step
    std::vector<int32_t>
        last_link_;  // the link a vehicle came through onto its lane (-1: inserted, changed lane)
    std::vector<int32_t> undo_ri_;    // route index before this step's move (vehicles that changed segment)
    std::vector<int32_t> undo_link_;  // last_link_ before this step's move
    std::vector<double> undo_acc_;    // (n * 4) time loss, distance, waiting time, wait before the move
    int64_t taken_back_ = 0;
    int cur_ = 0;
    std::vector<int32_t> route_idx_, lane_changes_;
    std::vector<double> depart_time_, arrival_time_, time_loss_, waiting_time_, distance_, last_lc_, wait_,
        start_wait_;
    std::vector<int8_t> lc_target_;  // lane-change decision of this step (-1, 0 none, +1)
    std::vector<int32_t> plan_lane_, plan_ri_, plan_link_, plan_want_;
    std::vector<int8_t> plan_score_;
    static constexpr int kChain = 8, kPlanLanes = 8;
    std::vector<int32_t> chain_ri_, chain_lane_, chain_link_;  // (n * kChain): the planned links ahead
    std::vector<int8_t> plan_reach_;                           // (n * kPlanLanes): lane_reach
    std::vector<double> plan_lane_end_;                        // (n * kPlanLanes): lane_end
    std::vector<double> plan_end_;  // distance from the lane start to the end of the continuation (inf: all)
    std::vector<double> tele_time_;
    std::vector<int64_t> tele_id_;
    std::vector<int32_t> tele_from_, tele_to_;
    std::vector<double> coll_time_;
    std::vector<int64_t> coll_id_, coll_other_;
    std::vector<int32_t> coll_seg_;
    std::vector<int8_t> lc_want_;  // strategic wish: direction of a lane without which the route cannot go on
    std::vector<uint8_t> collided_, entered_;

    // Pending vehicles by (depart, id) not yet queued; per-edge FIFO insertion queues.
    std::vector<int64_t> pending_;
    std::size_t pending_next_ = 0;
    std::vector<std::vector<int64_t>> edge_queue_;
    std::vector<std::size_t> edge_queue_head_;
    int64_t queued_ = 0;
    int64_t last_insert_step_ = -1;  // step_count_ at the last insertion attempt
    bool insert_dirty_ = false;      // vehicles, routes or closures changed since then
    std::vector<int64_t> inserted_;  // ids inserted since the last sort

    // Sorted membership of running vehicles: order_ by (segment, pos, id); seg_start_ (nseg + 1); rank_ (id).
    std::vector<int64_t> order_, order_tmp_;
    std::vector<int32_t> seg_start_, seg_fill_;
    std::vector<int32_t> rank_;
    int64_t nrun_ = 0;

    std::vector<int64_t> stat_entered_, stat_samples_;
    std::vector<double> stat_speed_;

    int64_t step_count_ = 0;
    int64_t collisions_ = 0;
};

}  // namespace twin
