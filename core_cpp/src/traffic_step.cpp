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

void TrafficSim::plan(int64_t i, int32_t lane, int32_t ri, int32_t& link, int& score, int32_t& want) {
    if (plan_lane_[i] != lane || plan_ri_[i] != ri) {
        int sc = 0;
        const int32_t k = choose_link(lane, i, ri, &sc);
        const int32_t e = net_.lane_edge[lane];
        const int32_t li = net_.lane_index[lane];
        const int32_t nlanes =
            static_cast<int32_t>(net_.edge_lane_offsets[e + 1] - net_.edge_lane_offsets[e]);
        int32_t w = -1;
        int best = sc;
        for (int32_t l = 0; l < nlanes; ++l) {
            const int32_t other = static_cast<int32_t>(net_.edge_lane_offsets[e]) + l;
            if (!net_.lane_allow[other] || l == li) continue;
            int s2 = 0;
            choose_link(other, i, ri, &s2);
            if (s2 > best || (s2 == best && w >= 0 && std::abs(l - li) < std::abs(w - li))) {
                best = s2;
                w = l;
            }
        }
        plan_lane_[i] = lane;
        plan_ri_[i] = ri;
        plan_link_[i] = k;
        plan_score_[i] = static_cast<int8_t>(sc);
        plan_want_[i] = w;
    }
    link = plan_link_[i];
    score = plan_score_[i];
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
    int32_t lo = seg_begin(lane), hi = seg_end(lane);
    while (lo < hi) {
        const int32_t mid = (lo + hi) / 2;
        if (pos[ord[mid]] > x) {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    for (int32_t q = lo; q < seg_end(lane); ++q) {
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

bool TrafficSim::yield_blocked(int64_t i, int32_t k, double d, double v) const {
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
        if (seg_end(sf) > seg_begin(sf)) return true;  // a foe is inside the junction
        const int32_t lf = net_.link_from_lane[f];
        const int32_t b = seg_begin(lf);
        for (int32_t q = seg_end(lf) - 1; q >= b && q >= seg_end(lf) - 4; --q) {
            const int64_t j = ord[q];
            if (next_link_[c][j] != f || !go_[c][j]) continue;
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
                if (first) go = !yield_blocked(i, k, d, v);
                break;
            default:  // 'G', 'M': priority
                break;
        }
        // Whatever the rules, nobody enters across the path of an emergency vehicle about to arrive.
        if (first && go && any_claim_ && emergency_claims_conflict(k)) go = false;
    }
    if (!first) return go;
    if (go && p_.keep_clear > 0) {
        // Keep clear: do not enter while the exit lane has no room (its last vehicle stands within our
        // length).
        const int32_t b = seg_begin(to), e = seg_end(to);
        if (e > b) {
            const int64_t j = order_[b];
            double need = p.length + p.min_gap;
            for (int32_t q = seg_begin(nl_ + k); q < seg_end(nl_ + k); ++q) {
                const int64_t o = order_[q];
                if (o != i) need += vp_[o].length + vp_[o].min_gap;
            }
            if (pos_[c][j] - vp_[j].length < need && speed_[c][j] < 1.0) go = false;
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
            int32_t lo = seg_begin(l), hi = seg_end(l);
            while (lo < hi) {
                const int32_t mid = (lo + hi) / 2;
                if (pos_[c][ord[mid]] > from) {
                    hi = mid;
                } else {
                    lo = mid + 1;
                }
            }
            for (int32_t q = lo; q < seg_end(l); ++q) {
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
        // Strategic: head for the nearest lane of this edge with a better link (one that leads to the next
        // edge at all, or into a lane from which the route goes on). Without any link: urgent near the lane
        // end.
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
            if (score_here == 0 && seg_len_[s] - x < p_.strategic_urgency) b_me = std::max(b_me, p.decel);
        } else if (yield_dir_[i] != 0) {
            // Out of an emergency vehicle's rescue lane, accepting up to decel for itself and its new
            // follower (not into a lane that leads on less well when the lane end is near).
            if (yield_dir_[i] != dir) continue;
            int score_tgt = 0;
            choose_link(tgt, i, ri, &score_tgt);
            if (score_tgt < score_here && seg_len_[s] - x < p_.strategic_urgency) continue;
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
            int score_tgt = 0;
            choose_link(tgt, i, ri, &score_tgt);
            if (score_tgt < score_here) continue;  // never to a lane that leads on less well
        }
        const double v0 = v0_on(i, s), v0t = v0_on(i, tgt);
        // New leader and follower in the target lane.
        double g_l = kInf, vl_l = 0;
        path_leader(i, tgt, x, ri, g_l, vl_l);
        if (g_l < 0.1) continue;
        int32_t lo = seg_begin(tgt), hi = seg_end(tgt);  // first vehicle with pos > x
        while (lo < hi) {
            const int32_t mid = (lo + hi) / 2;
            if (pos[ord[mid]] > x) {
                hi = mid;
            } else {
                lo = mid + 1;
            }
        }
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
        next_link_[c][i] = choose_link(seg_[c][i], i, route_idx_[i]);
    }
    sort_membership();
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
                first_go =
                    first_link >= 0 && may_enter(i, first_link, seg_len_[s] - x, v, false, &first_careful);
                if (first_careful) slow_at(seg_len_[s] - x);
            } else {
                first_link = s - nl_;
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
                    const bool go = k >= 0 && may_enter(i, k, dist, v, junctions == 0, &carefully);
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
                    // Merging: vehicles inside the junction on other links into the same lane and nearer to
                    // it are followed as if already on it (the nearest of them: the largest remaining
                    // distance still below ours; ties: the lower id goes first).
                    const double rem = dist;  // our front's distance to the lane (dist: to the end of cur)
                    for (int64_t a = lane_in_offsets_[to]; a < lane_in_offsets_[to + 1]; ++a) {
                        const int32_t s2 = nl_ + lane_in_links_[a];
                        if (s2 == cur) continue;
                        int64_t cand = -1;
                        for (int32_t q2 = seg_end(s2) - 1; q2 >= seg_begin(s2); --q2) {
                            const int64_t j = ord[q2];
                            const double rem2 = seg_len_[s2] - pos[j];
                            if (!(rem2 < rem || (rem2 == rem && j < i))) break;
                            cand = j;
                        }
                        if (cand >= 0)
                            follow(rem - (seg_len_[s2] - pos[cand]) - vp_[cand].length, spd[cand], false);
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
                int32_t lo = seg_begin(adj), hi = seg_end(adj);  // first vehicle with pos > x
                while (lo < hi) {
                    const int32_t mid = (lo + hi) / 2;
                    if (pos[ord[mid]] > x) {
                        hi = mid;
                    } else {
                        lo = mid + 1;
                    }
                }
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
                sn = net_.link_to_lane[sn - nl_];
                ++rn;
                entered = true;
            }
            moved_on = true;
        }
        const double vmax_here = v0_on(i, sn);
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
        if (entered) entered_[i] = 1;
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
                auto check = [&](int32_t s2) {
                    if (seg_end(s2) == seg_begin(s2)) return;
                    const int64_t j = ord[seg_begin(s2)];
                    const double rear = pos[j] - vp_[j].length;
                    if (j != i && rear < 0 && pos[i] > seg_len_[s] + rear + kOverlapEps) over = true;
                };
                if (s < nl_) {
                    for (int64_t a = net_.lane_link_offsets[s]; a < net_.lane_link_offsets[s + 1]; ++a) {
                        check(nl_ + net_.lane_links[a]);
                    }
                } else {
                    check(net_.link_to_lane[s - nl_]);
                }
            }
            if (over && !collided_[i]) ++fresh;
            collided_[i] = over ? 1 : 0;
        }
    }
    collisions_ += fresh;
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

void TrafficSim::step(int64_t n) {
    if (n < 0) throw std::invalid_argument("n must be >= 0, got " + std::to_string(n));
    for (int64_t k = 0; k < n; ++k) {
        // Vehicles added (or routes, closures changed) since the last insertion at this time.
        if (last_insert_step_ != step_count_ || insert_dirty_) insert_pending(time());
        if (!emerg_ids_.empty()) emergency_lanes();
        lane_change_phase();
        if (!emerg_ids_.empty()) emergency_claims();
        move_phase();
        cur_ = 1 - cur_;
        ++step_count_;
        sort_membership();
        insert_pending(time());
        last_insert_step_ = step_count_;
        insert_dirty_ = false;
        post_step();
        update_signals();
    }
}

}  // namespace twin
