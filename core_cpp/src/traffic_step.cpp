// TrafficSim: the per-vehicle kernels (path planning through links, IDM, junction rules, lane changes,
// movement) and the step driver.
#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>

#include "twin/traffic.hpp"

namespace twin {

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr int32_t kArrive = -2;       // choose_link: the route ends on this lane
constexpr double kOverlapEps = 1e-6;  // metres: overlaps below this are rounding, not collisions

inline double power(double r, double delta) {
    if (delta == 4.0) {
        const double r2 = r * r;
        return r2 * r2;
    }
    if (delta == 2.0) return r * r;
    return std::pow(r, delta);
}

}  // namespace

double TrafficSim::v0_on(int64_t i, int32_t seg) const {
    const Veh& p = vp_[i];
    return std::min(seg_speed_[seg] * p.factor, p.vmax);
}

int32_t TrafficSim::choose_link(int32_t lane, int64_t i, int32_t ri, int* score_out) const {
    const int32_t* route = routes_.data() + route_begin_[i];
    const int32_t n = route_size_[i];
    if (ri + 1 >= n) {
        if (score_out) *score_out = 3;
        return kArrive;
    }
    // The planned continuation (best lanes over the route ahead), when this lane is on it.
    const std::size_t base = static_cast<std::size_t>(i) * kChain;
    for (int q = 0; q < kChain && chain_lane_[base + q] >= 0; ++q) {
        if (chain_ri_[base + q] == ri && chain_lane_[base + q] == lane) {
            if (score_out) *score_out = chain_link_[base + q] >= 0 ? 2 : 0;
            return chain_link_[base + q];
        }
    }
    const int32_t e2 = route[ri + 1];
    const int32_t e3 = ri + 2 < n ? route[ri + 2] : -1;
    int32_t best = -1;
    int score = 0;
    for (int64_t j = net_.lane_link_offsets[lane]; j < net_.lane_link_offsets[lane + 1]; ++j) {
        const int32_t k = net_.lane_links[j];
        const int32_t to = net_.link_to_lane[k];
        if (net_.lane_edge[to] != e2 || !net_.lane_allow[to]) continue;
        // Prefer a link into a lane from which the route goes on (no lane change needed there).
        const int sc = 1 + ((e3 < 0 || lane_reaches(to, e3)) ? 1 : 0);
        if (sc > score) {
            score = sc;
            best = k;
        }
    }
    if (score_out) *score_out = score;
    return best;
}

void TrafficSim::plan(int64_t i, int32_t lane, int32_t ri, int32_t& link, int& reach, int32_t& want) {
    if (plan_lane_[i] != lane || plan_ri_[i] != ri) {
        // Best lanes (SUMO's MSVehicle::getBestLanes, simplified): backwards over the route edges ahead (up
        // to best_lanes_horizon metres), far[l] = the last route index lane l leads to without a lane change
        // (the horizon's last edge and the route's end count as reached by every allowed lane).
        const int32_t* route = routes_.data() + route_begin_[i];
        const int32_t n = route_size_[i];
        int32_t last = ri;
        double acc = 0;
        while (last + 1 < n && last - ri < 64 && acc < p_.best_lanes_horizon) {
            ++last;
            acc += net_.edge_length[route[last]];
        }
        thread_local std::vector<int32_t> far, off;
        off.assign(static_cast<std::size_t>(last - ri + 2), 0);
        for (int32_t r = ri; r <= last; ++r) {
            const int32_t e = route[r];
            off[r - ri + 1] =
                off[r - ri] + static_cast<int32_t>(net_.edge_lane_offsets[e + 1] - net_.edge_lane_offsets[e]);
        }
        far.assign(static_cast<std::size_t>(off.back()), -1);
        auto far_of = [&](int32_t r, int32_t l) -> int32_t& {  // l: lane row of edge route[r]
            return far[off[r - ri] + (l - static_cast<int32_t>(net_.edge_lane_offsets[route[r]]))];
        };
        // The link from `l` (route index r < last) into the lane of the next edge that leads on farthest
        // (first such link on ties), or -1.
        auto best_link = [&](int32_t r, int32_t l, int32_t& reach_out) {
            const int32_t e2 = route[r + 1];
            int32_t k_best = -1;
            reach_out = r;
            for (int64_t j = net_.lane_link_offsets[l]; j < net_.lane_link_offsets[l + 1]; ++j) {
                const int32_t k = net_.lane_links[j];
                const int32_t to = net_.link_to_lane[k];
                if (net_.lane_edge[to] != e2 || !net_.lane_allow[to]) continue;
                const int32_t f = far_of(r + 1, to);
                if (f > reach_out || k_best < 0) {
                    reach_out = std::max(f, r + 1);
                    k_best = k;
                }
            }
            return k_best;
        };
        for (int32_t r = last; r >= ri; --r) {
            const int32_t e = route[r];
            for (int64_t l = net_.edge_lane_offsets[e]; l < net_.edge_lane_offsets[e + 1]; ++l) {
                const int32_t lane_r = static_cast<int32_t>(l);
                if (!net_.lane_allow[lane_r]) continue;
                int32_t f = last;
                if (r < last) best_link(r, lane_r, f);
                far_of(r, lane_r) = f;
            }
        }
        // The links along the continuation from a lane of this edge (for `lane`: the first kChain are kept),
        // and the distance from its start to the continuation's end (inf: it reaches the horizon).
        const std::size_t base = static_cast<std::size_t>(i) * kChain;
        int q = 0;
        int32_t k0 = -1;
        auto continuation = [&](int32_t from, bool keep) {
            if (far_of(ri, from) >= last && !keep) return kInf;
            const bool open_end = far_of(ri, from) >= last;
            int32_t cur = from;
            double dist = 0;
            for (int32_t r = ri;; ++r) {
                dist += seg_len_[cur];
                int32_t k = -1, f = r;
                if (r < last) {
                    k = best_link(r, cur, f);
                    if (keep && q < kChain) {
                        chain_ri_[base + q] = r;
                        chain_lane_[base + q] = cur;
                        chain_link_[base + q] = k;
                        ++q;
                    }
                }
                if (keep && r == ri) k0 = ri + 1 >= n ? kArrive : k;
                if (k < 0 || (open_end && q >= kChain)) break;
                dist += seg_len_[nl_ + k];
                cur = net_.link_to_lane[k];
            }
            return open_end ? kInf : dist;
        };
        plan_end_[i] = continuation(lane, true);
        for (int q2 = q; q2 < kChain; ++q2) chain_lane_[base + q2] = -1;
        // Lanes of this edge: how far each leads; the nearest of those that lead farthest.
        const int32_t e = net_.lane_edge[lane];
        const int32_t li = net_.lane_index[lane];
        const int32_t l0 = static_cast<int32_t>(net_.edge_lane_offsets[e]);
        const int32_t nlanes = static_cast<int32_t>(net_.edge_lane_offsets[e + 1]) - l0;
        const int32_t here = far_of(ri, lane);
        int32_t best = here, w = -1;
        for (int32_t l = 0; l < nlanes; ++l) {
            const int32_t f = net_.lane_allow[l0 + l] ? far_of(ri, l0 + l) : -1;
            if (l < kPlanLanes) {
                const std::size_t at = static_cast<std::size_t>(i) * kPlanLanes + l;
                plan_reach_[at] = static_cast<int8_t>(f < 0 ? -1 : std::min(f - ri, 127));
                plan_lane_end_[at] = f < 0 ? 0.0 : (l == li ? plan_end_[i] : continuation(l0 + l, false));
            }
            if (l == li || f < 0) continue;
            if (f > best || (f == best && w >= 0 && std::abs(l - li) < std::abs(w - li))) {
                best = f;
                w = l;
            }
        }
        plan_lane_[i] = lane;
        plan_ri_[i] = ri;
        plan_link_[i] = k0;
        plan_score_[i] = static_cast<int8_t>(std::min(here - ri, 127));
        plan_want_[i] = w;
    }
    link = plan_link_[i];
    reach = plan_score_[i];
    want = plan_want_[i];
}

// SUMO's IDM speed update (MSCFModel_IDM::_v): idm_iters_ Euler iterations over dt with the leader's speed
// held; gap is the net distance to the leader's rear (or to a stop line when min_gap is false: then s* has no
// s0 and the vehicle stops at the line).
double TrafficSim::idm_speed(const Veh& p, double v, double v0, double gap, double vl, bool min_gap) const {
    const double h = dt_ / idm_iters_;
    const double inv_v0 = 1.0 / v0, inv_tsab = 1.0 / p.two_sqrt_ab, s0 = min_gap ? p.min_gap : 0.0;
    double vn = v, s = gap;
    if (!(gap < 1e12)) {
        for (int it = 0; it < idm_iters_; ++it) {
            vn = std::max(0.0, vn + p.accel * (1.0 - power(vn * inv_v0, p.delta)) * h);
        }
        return vn;
    }
    for (int it = 0; it < idm_iters_; ++it) {
        const double ss = std::max(0.0, vn * p.tau + vn * (vn - vl) * inv_tsab) + s0;
        const double q = ss / std::max(1e-3, s);
        vn = std::max(0.0, vn + p.accel * (1.0 - power(vn * inv_v0, p.delta) - q * q) * h);
        s -= std::max(0.0, (vn - vl) * h);
    }
    return vn;
}

double TrafficSim::idm_accel(const Veh& p, double v, double v0, double gap, double vl) const {
    double acc = 1.0 - power(v / v0, p.delta);
    if (gap < 1e12) {
        const double ss = p.min_gap + std::max(0.0, v * p.tau + v * (v - vl) / p.two_sqrt_ab);
        const double s = std::max(1e-3, gap);
        acc -= (ss * ss) / (s * s);
    }
    return p.accel * acc;
}

int64_t TrafficSim::path_leader(int64_t i, int32_t lane, double x, int32_t ri, double& gap,
                                double& vl) const {
    const int c = cur_;
    const int64_t* ord = order_.data();
    const std::vector<double>& pos = pos_[c];
    // First vehicle on the lane with its front beyond x (other than i).
    for (int32_t q = first_after(lane, x); q < seg_end(lane); ++q) {
        const int64_t j = ord[q];
        if (j == i) continue;
        gap = pos[j] - vp_[j].length - x;
        vl = speed_[c][j];
        return j;
    }
    const Veh& p = vp_[i];
    const double look = p_.lookahead + p.vmax * p.vmax / (2 * p.decel);
    double dist = seg_len_[lane] - x;
    int32_t cur = lane, r = ri;
    int64_t best = -1;
    gap = kInf;
    while (dist < look) {
        int32_t next;
        if (cur < nl_) {
            // Vehicles that left this lane through any link but whose rear is still on it (also when our
            // route ends on this lane or has no link from it: they are in our way all the same).
            for (int64_t a = net_.lane_link_offsets[cur]; a < net_.lane_link_offsets[cur + 1]; ++a) {
                const int32_t s2 = nl_ + net_.lane_links[a];
                if (seg_end(s2) == seg_begin(s2)) continue;
                const int64_t j = ord[seg_begin(s2)];
                const double rear = pos[j] - vp_[j].length;
                if (j != i && rear < 0 && dist + rear < gap) {
                    gap = dist + rear;
                    vl = speed_[c][j];
                    best = j;
                }
            }
            const int32_t k = choose_link(cur, i, r);
            if (k < 0) break;
            next = nl_ + k;
        } else {
            next = net_.link_to_lane[cur - nl_];
            ++r;
        }
        if (best >= 0) return best;
        if (seg_end(next) > seg_begin(next)) {
            const int64_t j = ord[seg_begin(next)];
            if (j == i) return -1;
            gap = dist + pos[j] - vp_[j].length;
            vl = speed_[c][j];
            return j;
        }
        dist += seg_len_[next];
        cur = next;
    }
    return best;
}

bool TrafficSim::yield_blocked(int64_t i, int32_t k, double d, double v, double rem) const {
    if (rem < 0) rem = d + seg_len_[nl_ + k];  // d is to the stop line: our front's distance to the exit lane
    const int c = cur_;
    const int64_t* ord = order_.data();
    // Gap acceptance by time: a foe blocks if it occupies the junction, or if it will be in the junction
    // (from its arrival until its rear has cleared its link) at any time between our arrival and tcrit after
    // it.
    const double tcrit = std::max(p_.min_critical_gap, p_.critical_gap - p_.impatience * wait_[i]);
    // Our arrival at the conflict area: at the current speed, or sooner when accelerating from a crawl (a
    // vehicle standing 1 m before the line is there in under a second, not in d / 0.1 m/s).
    const double a = vp_[i].accel;
    const double t_me = std::min(d / std::max(v, 0.1), (std::sqrt(v * v + 2 * a * d) - v) / a);
    for (int64_t a = net_.link_foe_offsets[k]; a < net_.link_foe_offsets[k + 1]; ++a) {
        const int32_t f = net_.link_foes[a];
        const int32_t sf = nl_ + f;
        // A foe inside the junction (not one still before its waiting point there, nor one standing at it:
        // it waits itself; nor one standing farther back on a path into our exit lane: it waits for us).
        if (seg_end(sf) > seg_begin(sf)) {
            const int64_t j = ord[seg_end(sf) - 1];
            const double pj = pos_[c][j];
            const bool waiting =
                wait_pos_[f] >= 0 && pj <= wait_pos_[f] + 0.5 && speed_[c][j] < p_.stop_speed;
            const bool behind = net_.link_to_lane[f] == net_.link_to_lane[k] && seg_len_[sf] - pj > rem &&
                                speed_[c][j] < p_.stop_speed;
            if (pj >= wait_pos_[f] - 0.5 && !waiting && !behind) return true;
        }
        const int32_t lf = net_.link_from_lane[f];
        const int32_t b = seg_begin(lf);
        for (int32_t q = seg_end(lf) - 1; q >= b && q >= seg_end(lf) - 4; --q) {
            const int64_t j = ord[q];
            // During the movement: the foes' decisions of this step (decide_phase), else the last step's.
            if (fresh_ ? (pre_link_[j] != f || !pre_go_[j]) : (next_link_[c][j] != f || !go_[c][j])) continue;
            const double vj = std::max(speed_[c][j], 0.1);
            const double tj = (seg_len_[lf] - pos_[c][j]) / vj;
            const double clear_j = (seg_len_[sf] + vp_[j].length) / std::max(vj, 1.0);
            if (tj >= t_me + tcrit || tj + clear_j < t_me)
                continue;  // comes later, or has passed before we come
            // Mutual foes (both must yield, e.g. right-before-left all round): the earlier arrival goes
            // first.
            bool mutual = false;
            for (int64_t m = net_.link_foe_offsets[f]; m < net_.link_foe_offsets[f + 1]; ++m) {
                if (net_.link_foes[m] == k) {
                    mutual = true;
                    break;
                }
            }
            if (mutual && (t_me < tj || (t_me == tj && i < j))) continue;
            return true;
        }
    }
    return false;
}

bool TrafficSim::inside_yield(int64_t i, int32_t k, double d, double v) const {
    if (wait_pos_[k] < 0 || d < 0) return false;
    const uint8_t st = link_state_[k];
    if (st == 'G' || st == 'M' || priority_[i]) return false;
    return yield_blocked(i, k, d, v, d + seg_len_[nl_ + k] - wait_pos_[k]);
}

bool TrafficSim::red_for(int64_t i, int32_t k, double d, double v) const {
    switch (link_state_[k]) {
        case 'r':
        case 'u':
            return true;
        case 'y':
        case 'Y':
            // Amber: stop if the vehicle can still stop comfortably at the line.
            return d >= v * v / (2 * vp_[i].decel);
        default:
            return false;
    }
}

bool TrafficSim::emergency_claims_conflict(int32_t k) const {
    for (int64_t a = conf_offsets_[k]; a < conf_offsets_[k + 1]; ++a) {
        if (claim_[conf_links_[a]] <= p_.emergency_yield_time) return true;
    }
    return false;
}

bool TrafficSim::emergency_blocked(int64_t i, int32_t k, double d, double v, bool only_emergency) const {
    const int c = cur_;
    const int64_t* ord = order_.data();
    const double t_me = d / std::max(v, 1.0);
    for (int64_t a = conf_offsets_[k]; a < conf_offsets_[k + 1]; ++a) {
        const int32_t f = conf_links_[a];
        const int32_t sf = nl_ + f;
        for (int32_t q = seg_begin(sf); q < seg_end(sf); ++q) {
            if (!only_emergency || priority_[ord[q]]) return true;  // on a conflicting path in the junction
        }
        const int32_t lf = net_.link_from_lane[f];
        for (int32_t q = seg_end(lf) - 1; q >= seg_begin(lf) && q >= seg_end(lf) - 4; --q) {
            const int64_t j = ord[q];
            if (next_link_[c][j] != f) continue;
            const double dj = seg_len_[lf] - pos_[c][j], vj = speed_[c][j];
            if (priority_[j]) {
                // Another emergency vehicle: the earlier arrival goes first (ties: the lower id).
                const double tj = dj / std::max(vj, 1.0);
                if (tj <= p_.emergency_yield_time && (tj < t_me || (tj == t_me && j < i))) return true;
                continue;
            }
            if (only_emergency) continue;
            // A vehicle that decided to go and can no longer stop comfortably will enter: let it pass.
            if (go_[c][j] && dj < vj * vj / (2 * vp_[j].decel) + vj * dt_ + 0.5) return true;
        }
    }
    return false;
}

bool TrafficSim::may_enter(int64_t i, int32_t k, double d, double v, bool first, bool* careful) const {
    const int c = cur_;
    const Veh& p = vp_[i];
    const int32_t to = net_.link_to_lane[k];
    if (careful) *careful = false;
    if (edge_closed_[net_.lane_edge[to]]) return false;
    const uint8_t st = link_state_[k];
    bool go = true;
    if (priority_[i]) {
        // Emergency vehicle: red lights and yield rules do not stop it, but it passes them carefully: slowly
        // at a red light, and only when nobody is in or about to enter a conflicting path.
        const bool red = red_for(i, k, d, v) || st == 's';
        if (careful) *careful = red;
        if (first) {
            // With priority ('G', 'M') it only gives way to other emergency vehicles (crossing on red).
            go = !emergency_blocked(i, k, d, v, !(red || st == 'g' || st == 'm'));
        }
    } else {
        switch (st) {
            case 'r':
            case 'u':
                return false;
            case 'y':
            case 'Y':
                if (red_for(i, k, d, v)) return false;
                break;
            case 's':
                if (first) go = wait_[i] > 0 && d < 2.0 && !yield_blocked(i, k, d, v);
                break;
            case 'g':
            case 'm':
                // A left turn with a waiting point inside the junction yields there (move_phase).
                if (first && wait_pos_[k] < 0) go = !yield_blocked(i, k, d, v);
                break;
            default:  // 'G', 'M': priority
                break;
        }
        // Whatever the rules, nobody enters across the path of an emergency vehicle about to arrive.
        if (first && go && any_claim_ && emergency_claims_conflict(k)) go = false;
    }
    if (!first) return go;
    if (go && p_.keep_clear > 0) {
        // Keep clear: do not enter while the exit lane has no room (its last vehicle's rear is within our
        // length and gap, after the vehicles inside the junction on any path into that lane).
        const int32_t b = seg_begin(to), e = seg_end(to);
        if (e > b) {
            const int64_t j = order_[b];
            double need = p.length + p.min_gap;
            for (int64_t a = lane_in_offsets_[to]; a < lane_in_offsets_[to + 1]; ++a) {
                const int32_t s2 = nl_ + lane_in_links_[a];
                for (int32_t q = seg_begin(s2); q < seg_end(s2); ++q) {
                    const int64_t o = order_[q];
                    if (o != i) need += vp_[o].length + vp_[o].min_gap;
                }
            }
            // (a moving last vehicle makes room: what it drives in 4 s counts)
            if (pos_[c][j] - vp_[j].length + 4.0 * speed_[c][j] < need) go = false;
        }
    }
    if (!go && next_link_[c][i] == k && go_[c][i] && d < v * v / (2 * p.decel)) {
        go = true;  // committed: it decided to go and can no longer stop comfortably
    }
    return go;
}

void TrafficSim::emergency_lanes() {
    for (int64_t j : yielders_) {
        yield_dir_[j] = 0;
        avoid_lane_[j] = -1;
    }
    yielders_.clear();
    const int c = cur_;
    const int64_t* ord = order_.data();
    for (int64_t e : emerg_ids_) {
        rescue_lane_[e] = -1;
        if (state_[e] != kVehRunning || seg_[c][e] >= nl_) continue;
        const int32_t s = seg_[c][e];
        const int32_t edge = net_.lane_edge[s];
        const int32_t l0 = static_cast<int32_t>(net_.edge_lane_offsets[edge]);
        const int32_t nlanes = static_cast<int32_t>(net_.edge_lane_offsets[edge + 1]) - l0;
        if (nlanes < 2) continue;
        // Rescue lane: the leftmost allowed lane from which the route goes on best.
        int best = -1, r_idx = -1;
        for (int32_t l = 0; l < nlanes; ++l) {
            if (!net_.lane_allow[l0 + l]) continue;
            int sc = 0;
            choose_link(l0 + l, e, route_idx_[e], &sc);
            if (sc >= best) {
                best = sc;
                r_idx = l;
            }
        }
        if (r_idx < 0) continue;
        rescue_lane_[e] = r_idx;
        const int32_t lane = l0 + r_idx;
        const int8_t dir = r_idx > 0 ? -1 : 1;
        // Vehicles from beside the emergency vehicle up to emergency_yield_distance ahead: out of the rescue
        // lane (those in it), or not into it (the others).
        const double x = pos_[c][e];
        for (int32_t l = l0; l < l0 + nlanes; ++l) {
            const double from = x - (l == s ? 0.0 : vp_[e].length);
            for (int32_t q = first_after(l, from); q < seg_end(l); ++q) {
                const int64_t j = ord[q];
                if (pos_[c][j] - vp_[j].length > x + p_.emergency_yield_distance) break;
                if (priority_[j] || j == e || yield_dir_[j] != 0 || avoid_lane_[j] >= 0) continue;
                if (l == lane && r_idx + dir >= 0 && r_idx + dir < nlanes) yield_dir_[j] = dir;
                avoid_lane_[j] = r_idx;
                yielders_.push_back(j);
            }
        }
    }
}

void TrafficSim::emergency_claims() {
    for (int32_t k : claimed_) claim_[k] = kInf;
    claimed_.clear();
    any_claim_ = false;
    const int c = cur_;
    for (int64_t e : emerg_ids_) {
        if (state_[e] != kVehRunning) continue;
        const double v = std::max(speed_[c][e], 1.0);
        const double horizon = v * p_.emergency_yield_time;
        int32_t cur = seg_[c][e], r = route_idx_[e];
        double dist = seg_len_[cur] - pos_[c][e];
        auto claim = [&](int32_t k, double when) {
            if (claim_[k] == kInf) claimed_.push_back(k);
            claim_[k] = std::min(claim_[k], when);
            any_claim_ = true;
        };
        if (cur >= nl_) claim(cur - nl_, 0.0);  // inside the junction
        for (int hops = 0; hops < 8 && dist <= horizon; ++hops) {
            int32_t next;
            if (cur < nl_) {
                const int32_t k = choose_link(cur, e, r);
                if (k < 0) break;
                claim(k, dist / v);
                next = nl_ + k;
            } else {
                next = net_.link_to_lane[cur - nl_];
                ++r;
            }
            dist += seg_len_[next];
            cur = next;
        }
    }
}

// Two vehicles standing side by side, each unable to go on from its lane and wanting the other's (typically
// both at the stop line): they swap lanes when neither then overlaps anybody else. Serial and rare.
void TrafficSim::swap_deadlocked() {
    const int c = cur_;
    const int64_t* ord = order_.data();
    const std::vector<double>& pos = pos_[c];
    // Whether [front - len, front] on `lane` overlaps a vehicle there (other than skip) or one changing into
    // it.
    auto overlaps_others = [&](int32_t lane, double front, double len, int64_t skip) {
        const int32_t e = net_.lane_edge[lane];
        for (int32_t l = lane - 1; l <= lane + 1; ++l) {
            if (l < net_.edge_lane_offsets[e] || l >= net_.edge_lane_offsets[e + 1]) continue;
            for (int32_t q = seg_begin(l); q < seg_end(l); ++q) {
                const int64_t j = ord[q];
                if (j == skip || l + lc_target_[j] != lane) continue;
                if (pos[j] > front - len && pos[j] - vp_[j].length < front) return true;
            }
        }
        return false;
    };
    for (int64_t q = 0; q < nrun_; ++q) {
        const int64_t i = ord[q];
        if (lc_want_[i] == 0 || lc_target_[i] != 0 || wait_[i] < 2.0) continue;
        const int32_t s = seg_[c][i];
        const int32_t tgt = s + lc_want_[i];
        for (int32_t r = seg_begin(tgt); r < seg_end(tgt); ++r) {
            const int64_t j = ord[r];
            if (lc_want_[j] != -lc_want_[i] || lc_target_[j] != 0 || wait_[j] < 2.0) continue;
            if (!(pos[j] > pos[i] - vp_[i].length && pos[j] - vp_[j].length < pos[i]))
                continue;  // side by side
            if (overlaps_others(tgt, pos[i], vp_[i].length, j) ||
                overlaps_others(s, pos[j], vp_[j].length, i)) {
                continue;
            }
            lc_target_[i] = lc_want_[i];
            lc_target_[j] = lc_want_[j];
            break;
        }
    }
}

void TrafficSim::lane_change_phase() {
    const int c = cur_;
    const double t = time();
    const int dir = (step_count_ % 2 == 0) ? 1 : -1;  // left on even steps, right on odd steps
    const int64_t every = std::max<int64_t>(1, std::llround(p_.lc_interval / (2 * dt_)));
    const int64_t phase = step_count_ / 2;
    const int64_t* ord = order_.data();
    const std::vector<double>& pos = pos_[c];
    const std::vector<double>& spd = speed_[c];
    int64_t changes = 0;
#pragma omp parallel for schedule(static) reduction(+ : changes) if (nrun_ >= par_min_)
    for (int64_t q = 0; q < nrun_; ++q) {
        const int64_t i = ord[q];
        lc_target_[i] = 0;
        lc_want_[i] = 0;
        const int32_t s = seg_[c][i];
        if (s >= nl_) continue;
        const int32_t e = net_.lane_edge[s];
        const int32_t li = net_.lane_index[s];
        const int32_t nlanes =
            static_cast<int32_t>(net_.edge_lane_offsets[e + 1] - net_.edge_lane_offsets[e]);
        const int32_t ri = route_idx_[i];
        int score_here = 0;
        int32_t link_here = -1, want = -1;
        plan(i, s, ri, link_here, score_here, want);
        const Veh& p = vp_[i];
        const double x = pos[i], v = spd[i];
        // Strategic (SUMO's bestLanes): head for the nearest lane of this edge that leads on farther along
        // the route without a lane change, once the current lane's continuation ends on this or the next edge
        // or within strategic_urgency metres per lane to cross; urgent within strategic_urgency of its end.
        const double end_here = plan_end_[i] - x;
        if (want >= 0 && score_here > 1 && end_here > p_.strategic_urgency * std::abs(want - li)) want = -1;
        lc_want_[i] = static_cast<int8_t>(score_here == 0 && want >= 0 ? (want > li ? 1 : -1) : 0);
        if (t - last_lc_[i] < p_.lc_cooldown - 1e-9) continue;
        if (li + dir < 0 || li + dir >= nlanes) continue;
        const int32_t tgt = s + dir;
        if (!net_.lane_allow[tgt]) continue;
        if (avoid_lane_[i] == li + dir && want < 0) continue;  // an emergency vehicle's rescue lane
        double b_me = p_.lc_safe_decel;
        bool strategic = false;
        if (want >= 0) {
            if ((want - li) * dir <= 0) continue;
            strategic = true;
            if (end_here < p_.strategic_urgency) b_me = std::max(b_me, p.decel);
        } else if (yield_dir_[i] != 0) {
            // Out of an emergency vehicle's rescue lane, accepting up to decel for itself and its new
            // follower (not into a lane that leads on less well when the lane end is near).
            if (yield_dir_[i] != dir) continue;
            if (lane_reach(i, li + dir) < score_here && end_here < p_.strategic_urgency) continue;
            strategic = true;
            b_me = std::max(b_me, p.decel);
        } else if (priority_[i]) {
            // An emergency vehicle heads for its rescue lane (no MOBIL).
            if (rescue_lane_[i] < 0 || (rescue_lane_[i] - li) * dir <= 0) continue;
            strategic = true;
        } else {
            // MOBIL about once per lc_interval; to the left only when held up, keep-right checks less often.
            if (dir > 0 && (v >= 0.9 * v0_on(i, s) || (phase + i) % every != 0)) continue;
            if (dir < 0 && (phase + i) % (5 * every) != 0) continue;
            // Not to a lane that leads on less far unless its continuation is long still.
            const int reach_tgt = lane_reach(i, li + dir);
            if (reach_tgt < score_here &&
                (reach_tgt <= 1 || lane_end(i, li + dir) - x < 2 * p_.strategic_urgency))
                continue;
        }
        const double v0 = v0_on(i, s), v0t = v0_on(i, tgt);
        // New leader and follower in the target lane.
        double g_l = kInf, vl_l = 0;
        path_leader(i, tgt, x, ri, g_l, vl_l);
        if (g_l < 0.1) continue;
        const int32_t lo = first_after(tgt, x);  // first vehicle with pos > x
        double a_n = 0, a_n2 = 0;
        bool has_f = false;
        if (lo > seg_begin(tgt)) {
            const int64_t f = ord[lo - 1];
            const Veh& pf = vp_[f];
            const double g_f = x - p.length - pos[f];
            if (g_f < 0.1) continue;
            if (priority_[f] && !priority_[i] && g_f < p_.emergency_yield_distance) continue;  // its way
            const double v0f = v0_on(f, tgt);
            a_n2 = idm_accel(pf, spd[f], v0f, g_f, v);
            const double b_f = strategic && b_me > p_.lc_safe_decel ? std::max(p_.lc_safe_decel, pf.decel)
                                                                    : p_.lc_safe_decel;
            if (a_n2 < -b_f) continue;
            a_n = idm_accel(pf, spd[f], v0f, g_l + x - pos[f], vl_l);
            has_f = true;
        } else {
            // The nearest vehicles on links into the target lane must not be cut off either.
            bool unsafe = false;
            for (int64_t a = lane_in_offsets_[tgt]; a < lane_in_offsets_[tgt + 1] && !unsafe; ++a) {
                const int32_t s2 = nl_ + lane_in_links_[a];
                if (seg_end(s2) == seg_begin(s2)) continue;
                const int64_t f = ord[seg_end(s2) - 1];
                const double g_f = seg_len_[s2] - pos[f] + x - p.length;
                if (g_f < 0.1 || idm_accel(vp_[f], spd[f], v0_on(f, s2), g_f, v) < -p_.lc_safe_decel)
                    unsafe = true;
            }
            if (unsafe) continue;
        }
        const double a_c2 = idm_accel(p, v, v0t, g_l, vl_l);
        if (a_c2 < -b_me) continue;
        if (!strategic) {
            double g_c = kInf, vl_c = 0;
            path_leader(i, s, x, ri, g_c, vl_c);
            const double a_c = idm_accel(p, v, v0, g_c, vl_c);
            double a_o = 0, a_o2 = 0;
            if (rank_[i] > seg_begin(s)) {
                const int64_t o = ord[rank_[i] - 1];
                const double g_o = x - p.length - pos[o];
                const double v0o = v0_on(o, s);
                a_o = idm_accel(vp_[o], spd[o], v0o, g_o, v);
                a_o2 = idm_accel(vp_[o], spd[o], v0o, g_o + p.length + g_c, vl_c);
            }
            const double incentive =
                a_c2 - a_c + p_.lc_politeness * ((has_f ? a_n2 - a_n : 0.0) + (a_o2 - a_o));
            const double threshold = p_.lc_threshold + (dir > 0 ? p_.lc_bias_right : -p_.lc_bias_right);
            if (!(incentive > threshold)) continue;
        }
        lc_target_[i] = static_cast<int8_t>(dir);
        ++changes;
    }
    swap_deadlocked();
    changes = 0;
    for (int64_t q = 0; q < nrun_; ++q) changes += lc_target_[ord[q]] != 0;
    if (changes == 0) return;
#pragma omp parallel for schedule(static) if (nrun_ >= par_min_)
    for (int64_t q = 0; q < nrun_; ++q) {
        const int64_t i = ord[q];
        if (lc_target_[i] == 0) continue;
        seg_[c][i] += lc_target_[i];
        ++lane_changes_[i];
        last_lc_[i] = t;
        last_link_[i] = -1;  // its rear is on this lane now, not in the link it came through
        int reach_ = 0;
        int32_t want_ = -1;
        plan(i, seg_[c][i], route_idx_[i], next_link_[c][i], reach_, want_);
    }
    sort_membership();
}

void TrafficSim::decide_phase() {
    const int c = cur_;
    const int64_t* ord = order_.data();
#pragma omp parallel for schedule(static) if (nrun_ >= par_min_)
    for (int64_t q = 0; q < nrun_; ++q) {
        const int64_t i = ord[q];
        const int32_t s = seg_[c][i];
        const double x = pos_[c][i], v = speed_[c][i];
        const int32_t ri = route_idx_[i];
        pre_link_[i] = -1;
        pre_go_[i] = 0;
        pre_careful_[i] = 0;
        bool careful = false;
        if (s < nl_) {
            // Its lane's next link (yield rules only for the front vehicle of the lane), as move_phase asks.
            int32_t k = -1, w = -1;
            int sc = 0;
            plan(i, s, ri, k, sc, w);
            pre_link_[i] = k;
            if (k < 0) continue;
            const bool front = rank_[i] + 1 >= seg_end(s);
            pre_go_[i] = may_enter(i, k, seg_len_[s] - x, v, front, &careful) ? 1 : 0;
        } else {
            // The front vehicle of a junction path whose exit lane is empty: the link at that lane's end.
            const int32_t to = net_.link_to_lane[s - nl_];
            if (rank_[i] + 1 < seg_end(s) || seg_end(to) > seg_begin(to)) continue;
            const int32_t k = choose_link(to, i, ri + 1);
            pre_link_[i] = k;
            if (k < 0) continue;
            pre_go_[i] = may_enter(i, k, seg_len_[s] - x + seg_len_[to], v, true, &careful) ? 1 : 0;
        }
        pre_careful_[i] = careful ? 1 : 0;
    }
}

void TrafficSim::move_phase() {
    const int c = cur_, nx = 1 - c;
    const double t = time();
    const double dt = dt_;
    const int64_t* ord = order_.data();
    const std::vector<double>& pos = pos_[c];
    const std::vector<double>& spd = speed_[c];
#pragma omp parallel for schedule(static) if (nrun_ >= par_min_)
    for (int64_t q = 0; q < nrun_; ++q) {
        const int64_t i = ord[q];
        const Veh& p = vp_[i];
        const int32_t s = seg_[c][i];
        const double x = pos[i], v = spd[i];
        const int32_t ri = route_idx_[i];
        // An emergency vehicle that entered the junction against a red light crosses it slowly.
        const double v0 =
            careful_[i] && s >= nl_ ? std::min(v0_on(i, s), p_.emergency_red_speed) : v0_on(i, s);
        double vnew =
            kInf;  // the free-road speed is applied last, only if nothing ahead constrains (it is larger)
        double hard = kInf;  // the distance driven this step never exceeds this (leader's rear, stop line)
        bool led = false;    // a vehicle ahead within the lookahead
        auto follow = [&](double gap, double vl, bool real) {
            vnew = std::min(vnew, idm_speed(p, v, v0, gap, vl, true));
            if (real) hard = std::min(hard, gap);
            led = true;
        };
        auto stop_at = [&](double d) {
            vnew = std::min(vnew, idm_speed(p, v, v0, d, 0.0, false));
            hard = std::min(hard, d);
        };
        auto limit = [&](int32_t seg,
                         double d) {  // brake at decel to reach a lower speed limit at distance d
            const double vl = v0_on(i, seg);
            if (vl < v) vnew = std::min(vnew, std::sqrt(vl * vl + 2 * p.decel * std::max(0.0, d - v * dt)));
        };
        auto slow_at = [&](double d) {  // an emergency vehicle passing a red light: at most its red speed
            const double vr = p_.emergency_red_speed;
            vnew = std::min(vnew, std::sqrt(vr * vr + 2 * p.decel * std::max(0.0, d - v * dt)));
        };
        int32_t first_link = -1;
        bool first_go = true, first_careful = false;
        const int32_t r = rank_[i];
        const bool has_leader = r + 1 < seg_end(s);
        if (has_leader) {
            const int64_t j = ord[r + 1];
            follow(pos[j] - vp_[j].length - x, spd[j], true);
            if (s < nl_) {
                int sc_ = 0;
                int32_t w_ = -1;
                plan(i, s, ri, first_link, sc_, w_);
                first_go = first_link >= 0 && pre_go_[i];  // decide_phase: may_enter(..., first = false)
                first_careful = pre_careful_[i] != 0;
                if (first_careful) slow_at(seg_len_[s] - x);
            } else {
                first_link = s - nl_;
                if (inside_yield(i, first_link, wait_pos_[first_link] - x, v))
                    stop_at(wait_pos_[first_link] - x);
            }
        } else {
            const double look = p_.lookahead + v * v / (2 * p.decel);
            double dist = seg_len_[s] - x;
            int32_t cur = s, rr = ri;
            int junctions = 0;
            while (true) {
                int32_t next;
                if (cur < nl_) {
                    int32_t k;
                    if (cur == s) {
                        int sc_ = 0;
                        int32_t w_ = -1;
                        plan(i, s, ri, k, sc_, w_);
                    } else {
                        k = choose_link(cur, i, rr);
                    }
                    // Vehicles that left this lane through any link but whose rear is still on it (also when
                    // our route ends here).
                    for (int64_t a = net_.lane_link_offsets[cur]; a < net_.lane_link_offsets[cur + 1]; ++a) {
                        const int32_t s2 = nl_ + net_.lane_links[a];
                        if (seg_end(s2) == seg_begin(s2)) continue;
                        const int64_t j = ord[seg_begin(s2)];
                        const double rear = pos[j] - vp_[j].length;
                        if (j != i && rear < 0) follow(dist + rear, spd[j], true);
                    }
                    if (k == kArrive) break;
                    bool carefully = false;
                    bool go;
                    if (junctions == 0 && k == pre_link_[i]) {
                        // The decision of decide_phase (same arguments), checked again against the foes that
                        // go this step: a yielding link waits for them (unless it can no longer stop).
                        go = k >= 0 && pre_go_[i];
                        carefully = pre_careful_[i] != 0;
                        if (go && !priority_[i]) {
                            const uint8_t st = link_state_[k];
                            const bool yields = st == 's' || ((st == 'g' || st == 'm') && wait_pos_[k] < 0);
                            if (yields && yield_blocked(i, k, dist, v) &&
                                !(next_link_[c][i] == k && go_[c][i] && dist < v * v / (2 * p.decel))) {
                                go = false;
                            }
                        }
                    } else {
                        go = k >= 0 && may_enter(i, k, dist, v, junctions == 0, &carefully);
                    }
                    if (junctions == 0) {
                        first_link = k;
                        first_go = go;
                        first_careful = carefully;
                    }
                    ++junctions;
                    if (!go) {
                        stop_at(dist);
                        break;
                    }
                    if (carefully) slow_at(dist);
                    next = nl_ + k;
                } else {
                    const int32_t k = cur - nl_;
                    const int32_t to = net_.link_to_lane[k];
                    if (cur == s) first_link = k;
                    if (cur == s || junctions == 1) {
                        const double dw = dist - seg_len_[cur] + wait_pos_[k];
                        if (inside_yield(i, k, dw, v)) {
                            stop_at(dw);
                            break;
                        }
                    }
                    // Merging: vehicles on other links into the same lane and nearer to it are followed as if
                    // already on it (the nearest of them: the largest remaining distance still below ours;
                    // ties: the lower id goes first): those inside the junction, and those about to enter it
                    // (decided to go) from their lane, which may cross a short link within one step. The gap
                    // also bounds the distance driven, so that two vehicles never reach the lane overlapping.
                    const double rem = dist;  // our front's distance to the lane (dist: to the end of cur)
                    for (int64_t a = lane_in_offsets_[to]; a < lane_in_offsets_[to + 1]; ++a) {
                        const int32_t k2 = lane_in_links_[a];
                        const int32_t s2 = nl_ + k2;
                        if (s2 == cur) continue;
                        int64_t cand = -1;
                        double cand_rem = 0;
                        bool more = true;
                        for (int32_t q2 = seg_end(s2) - 1; q2 >= seg_begin(s2); --q2) {
                            const int64_t j = ord[q2];
                            const double rem2 = seg_len_[s2] - pos[j];
                            if (!(rem2 < rem || (rem2 == rem && j < i))) {
                                more = false;
                                break;
                            }
                            cand = j;
                            cand_rem = rem2;
                        }
                        const int32_t lf = net_.link_from_lane[k2];
                        for (int32_t q2 = seg_end(lf) - 1;
                             more && q2 >= seg_begin(lf) && q2 >= seg_end(lf) - 2; --q2) {
                            const int64_t j = ord[q2];
                            if (j == i || pre_link_[j] != k2 || !pre_go_[j]) break;
                            const double rem2 = seg_len_[lf] - pos[j] + seg_len_[s2];
                            if (!(rem2 < rem || (rem2 == rem && j < i))) break;
                            cand = j;
                            cand_rem = rem2;
                        }
                        if (cand >= 0) follow(rem - cand_rem - vp_[cand].length, spd[cand], true);
                    }
                    next = to;
                    ++rr;
                }
                limit(next, dist);
                if (dist > look) {
                    hard = std::min(hard, dist);
                    break;
                }
                if (seg_end(next) > seg_begin(next)) {
                    const int64_t j = ord[seg_begin(next)];
                    follow(dist + pos[j] - vp_[j].length, spd[j], true);
                    break;
                }
                dist += seg_len_[next];
                cur = next;
            }
        }
        if (!yielders_.empty() && s < nl_ && !priority_[i] && yield_dir_[i] == 0) {
            // Let a vehicle that makes way for an emergency vehicle in a lane beside us in: follow it as if
            // it were ahead in our lane, braking at most at decel.
            const int32_t e = net_.lane_edge[s];
            for (int32_t adj = s - 1; adj <= s + 1; adj += 2) {
                if (adj < net_.edge_lane_offsets[e] || adj >= net_.edge_lane_offsets[e + 1]) continue;
                const int32_t lo = first_after(adj, x);  // first vehicle with pos > x
                if (lo == seg_end(adj)) continue;
                const int64_t y = ord[lo];
                // Only for one that moves: a standing one gets in behind us once we have passed.
                if (yield_dir_[y] != s - adj || spd[y] < 1.0) continue;
                const double gy = pos[y] - vp_[y].length - x;
                if (gy > p.min_gap + v * p.tau + 5.0) continue;
                vnew = std::min(vnew, std::max(idm_speed(p, v, v0, gy, spd[y], true), v - p.decel * dt));
                led = true;
            }
        }
        if (!led) vnew = std::min(vnew, idm_speed(p, v, v0, kInf, 0.0, true));  // following is never faster
        vnew = std::max(vnew, v - p.emergency_decel * dt);
        vnew = std::max(0.0, std::min(vnew, std::max(0.0, hard) / dt));
        if (v < p_.stop_speed && vnew >= p_.stop_speed && p_.startup_delay > 0 && !led) {
            // Start-up reaction of the head of a queue (no vehicle ahead: it reacts to a light or a gap; the
            // vehicles behind it start with their leader as the IDM has them): it keeps standing a little
            // longer.
            if (start_wait_[i] < p_.startup_delay - 1e-9) {
                start_wait_[i] += dt;
                vnew = v;
            }
        } else {
            start_wait_[i] = 0;
        }
        // Move along the segments.
        double xn = x + vnew * dt;
        int32_t sn = s, rn = ri;
        bool arrived = false, entered = false, moved_on = false;
        int32_t via = -1;  // the last link it left for a lane this step
        while (true) {
            const double L = seg_len_[sn];
            if (sn < nl_) {
                if (rn + 1 >= route_size_[i]) {
                    if (xn >= L) arrived = true;
                    break;
                }
                if (xn <= L) break;
                const int32_t k = sn == s ? first_link : choose_link(sn, i, rn);
                if (k < 0) {
                    xn = L;
                    break;
                }
                xn -= L;
                sn = nl_ + k;
            } else {
                if (xn <= L) break;
                xn -= L;
                via = sn - nl_;
                sn = net_.link_to_lane[sn - nl_];
                ++rn;
                entered = true;
            }
            moved_on = true;
        }
        const double vmax_here = v0_on(i, sn);
        if (moved_on) {  // what resolve_overlaps restores if this move must be taken back
            undo_ri_[i] = ri;
            undo_link_[i] = last_link_[i];
            undo_acc_[static_cast<std::size_t>(i) * 4 + 0] = time_loss_[i];
            undo_acc_[static_cast<std::size_t>(i) * 4 + 1] = distance_[i];
            undo_acc_[static_cast<std::size_t>(i) * 4 + 2] = waiting_time_[i];
            undo_acc_[static_cast<std::size_t>(i) * 4 + 3] = wait_[i];
        }
        time_loss_[i] += dt * (vmax_here - vnew) / vmax_here;
        distance_[i] += vnew * dt - (arrived ? xn - seg_len_[sn] : 0.0);  // not beyond the end of the route
        if (vnew < p_.stop_speed) {
            waiting_time_[i] += dt;
            wait_[i] += dt;
        } else {
            wait_[i] = 0;
        }
        if (arrived) {
            state_[i] = kVehArrived;
            arrival_time_[i] = t + dt;
            seg_[nx][i] = sn;
            pos_[nx][i] = seg_len_[sn];
            speed_[nx][i] = vnew;
            continue;
        }
        seg_[nx][i] = sn;
        pos_[nx][i] = xn;
        speed_[nx][i] = vnew;
        route_idx_[i] = rn;
        if (entered) {
            entered_[i] = 1;
            last_link_[i] = via;
        }
        if (sn < nl_) {
            careful_[i] = 0;
        } else if (sn != s) {
            careful_[i] = first_careful ? 1 : 0;
        }
        if (moved_on) {
            next_link_[nx][i] = sn < nl_ ? choose_link(sn, i, rn) : sn - nl_;
            go_[nx][i] = 1;
        } else {
            next_link_[nx][i] = first_link;
            go_[nx][i] = first_go ? 1 : 0;
        }
    }
}

// Calls f(j) for each vehicle j first on a segment that segment s leads into whose rear the front vehicle i
// of s overlaps (the state of the current buffer). The rear of a vehicle on an exit lane lies only in the
// junction path it came through.
template <typename F>
void TrafficSim::for_each_overlap_beyond(int32_t s, int64_t i, F f) const {
    const int64_t* ord = order_.data();
    const std::vector<double>& pos = pos_[cur_];
    auto check = [&](int32_t s2) {
        if (seg_end(s2) == seg_begin(s2)) return;
        const int64_t j = ord[seg_begin(s2)];
        const double rear = pos[j] - vp_[j].length;
        if (j != i && rear < 0 && pos[i] > seg_len_[s] + rear + kOverlapEps) f(j);
    };
    if (s < nl_) {
        for (int64_t a = net_.lane_link_offsets[s]; a < net_.lane_link_offsets[s + 1]; ++a) {
            check(nl_ + net_.lane_links[a]);
        }
    } else {
        const int32_t exit_lane = net_.link_to_lane[s - nl_];
        if (seg_end(exit_lane) > seg_begin(exit_lane) && last_link_[ord[seg_begin(exit_lane)]] == s - nl_) {
            check(exit_lane);
        }
    }
}

void TrafficSim::resolve_overlaps() {
    // Vehicles that entered a junction path or lane this step from different directions without seeing one
    // another (each decided on the last state): where one now overlaps another, the one that moved onto the
    // other segment this step goes back to where it stood (at speed 0), like a last-moment stop at the stop
    // line. Nobody behind it is affected: every vehicle kept behind the rears it saw (the old positions).
    const int c = cur_, o = 1 - cur_;
    for (int round = 0; round < 4; ++round) {
        const int64_t* ord = order_.data();  // sort_membership below swaps the buffers
        std::vector<int64_t> back;
        auto moved = [&](int64_t j) { return seg_[o][j] != seg_[c][j]; };
        auto pick = [&](int64_t behind, int64_t ahead) {
            if (moved(behind)) {
                back.push_back(behind);
            } else if (moved(ahead)) {
                back.push_back(ahead);
            }
        };
        const std::vector<double>& pos = pos_[c];
        for (int32_t s = 0; s < nseg_; ++s) {
            const int32_t b = seg_begin(s), e = seg_end(s);
            for (int32_t q = b; q < e; ++q) {
                const int64_t i = ord[q];
                if (q + 1 < e) {
                    const int64_t j = ord[q + 1];
                    if (pos[i] > pos[j] - vp_[j].length + kOverlapEps) pick(i, j);
                    continue;
                }
                for_each_overlap_beyond(s, i, [&](int64_t j) { pick(i, j); });
            }
        }
        if (back.empty()) return;
        std::sort(back.begin(), back.end());
        back.erase(std::unique(back.begin(), back.end()), back.end());
        for (int64_t i : back) {
            const std::size_t u = static_cast<std::size_t>(i) * 4;
            seg_[c][i] = seg_[o][i];
            pos_[c][i] = pos_[o][i];
            speed_[c][i] = 0.0;
            route_idx_[i] = undo_ri_[i];
            last_link_[i] = undo_link_[i];
            time_loss_[i] = undo_acc_[u + 0] + dt_;
            distance_[i] = undo_acc_[u + 1];
            waiting_time_[i] = undo_acc_[u + 2] + dt_;
            wait_[i] = undo_acc_[u + 3] + dt_;
            entered_[i] = 0;
            next_link_[c][i] = seg_[c][i] < nl_ ? pre_link_[i] : seg_[c][i] - nl_;
            go_[c][i] = 0;
            plan_lane_[i] = -1;
            ++taken_back_;
        }
        sort_membership();
    }
}

void TrafficSim::post_step() {
    const int c = cur_;
    const int64_t* ord = order_.data();
    const std::vector<double>& pos = pos_[c];
    int64_t fresh = 0;
#pragma omp parallel for schedule(dynamic, 64) reduction(+ : fresh) if (nrun_ >= par_min_)
    for (int32_t s = 0; s < nseg_; ++s) {
        const int32_t b = seg_begin(s), e = seg_end(s);
        for (int32_t q = b; q < e; ++q) {
            const int64_t i = ord[q];
            bool over = false;
            if (q + 1 < e) {
                const int64_t j = ord[q + 1];
                over = pos[i] > pos[j] - vp_[j].length + kOverlapEps;
            } else {
                // The front vehicle of a segment against the rear of vehicles just beyond its end.
                for_each_overlap_beyond(s, i, [&](int64_t) { over = true; });
            }
            if (over && !collided_[i]) ++fresh;
            collided_[i] = over ? (collided_[i] ? 1 : 2) : 0;  // 2: new this step
        }
    }
    collisions_ += fresh;
    if (fresh > 0) {
        for (int64_t q = 0; q < nrun_; ++q) {
            const int64_t i = ord[q];
            if (collided_[i] != 2) continue;
            collided_[i] = 1;
            const int32_t s = seg_[c][i];
            coll_time_.push_back(time());
            coll_id_.push_back(i);
            coll_other_.push_back(q + 1 < seg_end(s) ? ord[q + 1] : -1);
            coll_seg_.push_back(s);
        }
    }
#pragma omp parallel for schedule(dynamic, 16) if (nrun_ >= par_min_)
    for (int32_t e = 0; e < ne_; ++e) {
        int64_t n = 0, in = 0;
        double sum = 0;
        for (int64_t l = net_.edge_lane_offsets[e]; l < net_.edge_lane_offsets[e + 1]; ++l) {
            for (int32_t q = seg_begin(static_cast<int32_t>(l)); q < seg_end(static_cast<int32_t>(l)); ++q) {
                const int64_t i = ord[q];
                ++n;
                sum += speed_[c][i];
                if (entered_[i]) {
                    ++in;
                    entered_[i] = 0;
                }
            }
        }
        stat_samples_[e] += n;
        stat_speed_[e] += sum;
        stat_entered_[e] += in;
    }
}

void TrafficSim::teleport_phase(double t) {
    // The heads of segments (front-most vehicle of each lane or junction path) that have stood for
    // time_to_teleport: like SUMO, they leave their place and continue on the next edge of their route where
    // there is room (or arrive at the end of their route).
    const int64_t* ord = order_.data();
    std::vector<int64_t> jam;
    for (int32_t s = 0; s < nseg_; ++s) {
        if (seg_end(s) == seg_begin(s)) continue;
        const int64_t i = ord[seg_end(s) - 1];
        if (wait_[i] < p_.time_to_teleport - 1e-9) continue;
        // Not one that waits before a closed road (it waits for a reroute or the reopening, not in a jam).
        const int32_t r = route_idx_[i] + 1;
        if (s < nl_ && r < route_size_[i] && edge_closed_[routes_[route_begin_[i] + r]]) continue;
        jam.push_back(i);
    }
    if (jam.empty()) return;
    const int c = cur_;
    std::vector<int32_t> from(jam.size());
    for (std::size_t a = 0; a < jam.size(); ++a) {
        from[a] = seg_[c][jam[a]];
        state_[jam[a]] = kVehPending;  // off the network while it is placed again
    }
    sort_membership();
    for (std::size_t a = 0; a < jam.size(); ++a) {
        const int64_t i = jam[a];
        int32_t to = -1;
        for (int32_t r = route_idx_[i] + 1; r < route_size_[i]; ++r) {
            const int32_t e = routes_[route_begin_[i] + r];
            if (edge_closed_[e]) continue;
            if (try_place(i, t, r, true)) {
                to = e;
                break;
            }
        }
        wait_[i] = 0;
        start_wait_[i] = 0;
        careful_[i] = 0;
        if (to < 0) {
            state_[i] = kVehArrived;
            arrival_time_[i] = t;
            route_idx_[i] = route_size_[i] - 1;
        }
        tele_time_.push_back(t);
        tele_id_.push_back(i);
        tele_from_.push_back(from[a]);
        tele_to_.push_back(to);
    }
    if (!inserted_.empty()) sort_membership();
}

void TrafficSim::step(int64_t n) {
    if (n < 0) throw std::invalid_argument("n must be >= 0, got " + std::to_string(n));
    for (int64_t k = 0; k < n; ++k) {
        // Vehicles added (or routes, closures changed) since the last insertion at this time.
        if (last_insert_step_ != step_count_ || insert_dirty_) insert_pending(time());
        if (!emerg_ids_.empty()) emergency_lanes();
        lane_change_phase();
        if (!emerg_ids_.empty()) emergency_claims();
        decide_phase();
        fresh_ = true;
        move_phase();
        fresh_ = false;
        cur_ = 1 - cur_;
        ++step_count_;
        sort_membership();
        resolve_overlaps();
        insert_pending(time());
        last_insert_step_ = step_count_;
        insert_dirty_ = false;
        post_step();
        if (p_.time_to_teleport > 0) teleport_phase(time());
        update_signals();
    }
}

}  // namespace twin
