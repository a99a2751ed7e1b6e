// CrowdSim: the step driver and the per-agent kernels of the social force and collision-free speed models,
// with the geometry they share (navigation direction, walls near an agent, the move clamp).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <string>
#include <type_traits>

#include "twin/crowd.hpp"

#ifdef _OPENMP
#include <omp.h>
#endif

namespace twin {

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr double kPi = 3.14159265358979323846;
constexpr int16_t kNoDir = INT16_MIN;  // dir_: not sampled yet

int thread_num() {
#ifdef _OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}

int max_threads() {
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}

inline uint64_t splitmix64(uint64_t x) {
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

// Counter-based uniform number in [0, 1) from (seed, agent id, counter): no shared sequential state.
inline double uniform01(uint64_t seed, uint64_t id, uint64_t counter) {
    const uint64_t h = splitmix64(seed ^ splitmix64(id ^ splitmix64(counter + 0x632BE59BD9B4E019ull)));
    return static_cast<double>(h >> 11) * 0x1.0p-53;
}

// std::lround for |v| < 2^31 without the library call: the nearest integer, halves away from zero (v -
// trunc(v) is exact).
inline long round_half_away(double v) {
    const long t = static_cast<long>(v);
    const double f = v - static_cast<double>(t);
    return t + (f >= 0.5 ? 1 : 0) - (f <= -0.5 ? 1 : 0);
}

// e^x for x in [-700, 700] (clamped to it), within 1 ulp of glibc's exp; branch-free arithmetic only, so a
// loop calling it vectorises (`omp simd`) and every lane gives the same bits as the scalar code on any
// target (the core is built with -ffp-contract=off). (x = k ln 2 + r, |r| <= ln 2 / 2, ln 2 split in two so
// that k ln2_hi is exact; e^r by its Taylor series to r^13, whose remainder is below 1e-17; 2^k added to the
// exponent bits.)
inline double exp_vec(double x) {
    constexpr double kShift = 0x1.8p52, kInvLn2 = 1.4426950408889634, kLn2Hi = 0x1.62e42fefa3800p-1,
                     kLn2Lo = 0x1.ef35793c76730p-45;
    x = std::min(700.0, std::max(-700.0, x));
    const double nf = x * kInvLn2 + kShift;  // k + 1.5 * 2^52: k in the low bits
    const double kf = nf - kShift;
    const double r = (x - kf * kLn2Hi) - kf * kLn2Lo;
    double p = 1.0 / 6227020800.0;
    p = p * r + 1.0 / 479001600.0;
    p = p * r + 1.0 / 39916800.0;
    p = p * r + 1.0 / 3628800.0;
    p = p * r + 1.0 / 362880.0;
    p = p * r + 1.0 / 40320.0;
    p = p * r + 1.0 / 5040.0;
    p = p * r + 1.0 / 720.0;
    p = p * r + 1.0 / 120.0;
    p = p * r + 1.0 / 24.0;
    p = p * r + 1.0 / 6.0;
    p = p * r + 0.5;
    p = p * r + 1.0;
    p = p * r + 1.0;
    return __builtin_bit_cast(double,
                              __builtin_bit_cast(uint64_t, p) + (__builtin_bit_cast(uint64_t, nf) << 52));
}

// |(x, y)| without hypot's overflow care (agent coordinates are small): several times faster.
inline double norm2(double x, double y) { return std::sqrt(x * x + y * y); }

struct Closest {
    double cx, cy, d;
    bool end;
};

// Closest point of segment s = [ax, ay, bx, by] to (x, y); `end` if it is an end point.
inline Closest closest_point(const double* s, double x, double y) {
    const double ax = s[0], ay = s[1], dx = s[2] - ax, dy = s[3] - ay;
    const double l2 = dx * dx + dy * dy;
    const double t = l2 > 0 ? ((x - ax) * dx + (y - ay) * dy) / l2 : 0.0;
    Closest c;
    if (t <= 0) {
        c.cx = ax, c.cy = ay, c.end = true;
    } else if (t >= 1) {
        c.cx = s[2], c.cy = s[3], c.end = true;
    } else {
        c.cx = ax + t * dx, c.cy = ay + t * dy, c.end = false;
    }
    c.d = norm2(x - c.cx, y - c.cy);
    return c;
}

inline double orient(double ax, double ay, double bx, double by, double cx, double cy) {
    return (bx - ax) * (cy - ay) - (by - ay) * (cx - ax);
}

}  // namespace

// ---------------------------------------------------------------------------------------------------------------
// Geometry shared by the models.

void CrowdSim::ensure_wall_bins(double radius) {
    if (radius <= wall_radius_) return;
    const int L = g_.levels;
    const double bs = bin_cells_ * g_.cell_size;
    const int64_t nb = static_cast<int64_t>(L) * nby_ * nbx_;
    std::vector<double> centres(static_cast<std::size_t>(2 * nb));
    std::vector<int32_t> lv(static_cast<std::size_t>(nb));
    for (int l = 0; l < L; ++l) {
        for (int by = 0; by < nby_; ++by) {
            for (int bx = 0; bx < nbx_; ++bx) {
                const int64_t b = (static_cast<int64_t>(l) * nby_ + by) * nbx_ + bx;
                centres[2 * b] = g_.origins[2 * l] + (bx + 0.5) * bs;
                centres[2 * b + 1] = g_.origins[2 * l + 1] + (by + 0.5) * bs;
                lv[b] = l;
            }
        }
    }
    // Every point of a bin is within bs / sqrt(2) of its centre.
    const CsrNeighbors near = wall_index_->within(centres.data(), nb, radius + bs * 0.7072, lv.data());
    bin_offsets_.assign(near.offsets.data.get(), near.offsets.data.get() + nb + 1);
    const int64_t nnz = bin_offsets_[nb];
    bin_walls_.resize(static_cast<std::size_t>(nnz));
    for (int64_t k = 0; k < nnz; ++k) bin_walls_[k] = static_cast<int32_t>(near.indices.data.get()[k]);
    wall_radius_ = radius;
}

// Desired direction: the field's per-cell descent directions blended bilinearly between the four cells around
// (x, y), normalised; if the blend would lead into a non-walkable neighbour of the agent's cell (axially or
// diagonally), the cell's own direction is used instead (it never does, by DistanceField::direction_at).
void CrowdSim::nav_direction(int field, int level, double x, double y, double& ex, double& ey) const {
    ex = ey = 0.0;
    int jc = 0, ic = 0;
    if (!locate(x, y, level, jc, ic)) return;
    const int16_t* D = fields_[field].data();  // unit directions x 32767
    const std::size_t c = flat(level, jc, ic);
    constexpr double q = 1.0 / 32767.0;
    const double ox = D[2 * c] * q, oy = D[2 * c + 1] * q;
    const double h = g_.cell_size;
    const double u = (x - g_.origins[2 * level]) / h - 0.5, v = (y - g_.origins[2 * level + 1]) / h - 0.5;
    const int i0 = static_cast<int>(std::floor(u)), j0 = static_cast<int>(std::floor(v));
    const double fx = u - i0, fy = v - j0;
    double ax = 0, ay = 0;
    for (int q = 0; q < 4; ++q) {
        const int i = i0 + (q & 1), j = j0 + (q >> 1);
        if (i < 0 || i >= g_.nx || j < 0 || j >= g_.ny) continue;
        const std::size_t cc = flat(level, j, i);
        if (D[2 * cc] == 0 && D[2 * cc + 1] == 0) continue;
        const double dx = D[2 * cc] * q, dy = D[2 * cc + 1] * q;
        const double w = ((q & 1) ? fx : 1 - fx) * ((q >> 1) ? fy : 1 - fy);
        ax += w * dx;
        ay += w * dy;
    }
    const double norm = norm2(ax, ay);
    const double on = norm2(ox, oy);
    if (!(norm > 1e-6)) {
        if (on > 0) ex = ox / on, ey = oy / on;
        return;
    }
    ax /= norm;
    ay /= norm;
    const int sx = ax > 1e-9 ? 1 : (ax < -1e-9 ? -1 : 0);
    const int sy = ay > 1e-9 ? 1 : (ay < -1e-9 ? -1 : 0);
    const bool safe = (sx == 0 || walkable_at(level, jc, ic + sx)) &&
                      (sy == 0 || walkable_at(level, jc + sy, ic)) &&
                      (sx == 0 || sy == 0 || walkable_at(level, jc + sy, ic + sx));
    if (safe) {
        ex = ax;
        ey = ay;
    } else if (on > 0) {
        ex = ox / on;
        ey = oy / on;
    }
}

// Is the straight move p -> q allowed on `level`: every cell it passes is walkable (through a cell corner
// both side cells must be), q is in a walkable cell, it crosses (or ends on) no wall near p, and, if
// clearance > 0, it does not bring the centre closer than min(clearance, current distance) to any wall (a
// disc of that radius never moves into a wall). On a blocking wall, `tangent` (if given) receives the unit
// direction to slide along (the first wall crossed, else the wall too close), else (0, 0).
bool CrowdSim::move_allowed(int level, double px, double py, double qx, double qy, double* tangent,
                            double clearance) const {
    int32_t cnt = 0;
    const int32_t* ids = wall_list(level, px, py, cnt);
    return move_allowed(level, px, py, qx, qy, tangent, clearance, ids, cnt);
}

bool CrowdSim::move_allowed(int level, double px, double py, double qx, double qy, double* tangent,
                            double clearance, const int32_t* ids, int32_t cnt) const {
    if (tangent) tangent[0] = tangent[1] = 0.0;
    int iy = 0, ix = 0, iy1 = 0, ix1 = 0;
    if (!locate(qx, qy, level, iy1, ix1) || !locate(px, py, level, iy, ix)) return false;
    // (p's cell is walkable: agents never stand elsewhere. Only a new cell needs looking up.)
    if ((ix != ix1 || iy != iy1) && !(cell_info_[flat(level, iy1, ix1)] & kWalkBit)) return false;
    if (ix != ix1 || iy != iy1) {
        const double h = g_.cell_size;
        const double u0 = (px - g_.origins[2 * level]) / h, v0 = (py - g_.origins[2 * level + 1]) / h;
        const double du = (qx - px) / h, dv = (qy - py) / h;
        const int sx = du > 0 ? 1 : (du < 0 ? -1 : 0), sy = dv > 0 ? 1 : (dv < 0 ? -1 : 0);
        double tx = sx > 0 ? (ix + 1 - u0) / du : (sx < 0 ? (ix - u0) / du : kInf);
        double ty = sy > 0 ? (iy + 1 - v0) / dv : (sy < 0 ? (iy - v0) / dv : kInf);
        const double dtx = sx ? 1.0 / std::fabs(du) : kInf, dty = sy ? 1.0 / std::fabs(dv) : kInf;
        int cx = ix, cy = iy;
        int guard = std::abs(ix1 - ix) + std::abs(iy1 - iy) + 2;
        while ((cx != ix1 || cy != iy1) && guard-- > 0 && std::min(tx, ty) <= 1.0 + 1e-9) {
            if (tx < ty) {
                cx += sx;
                tx += dtx;
            } else if (ty < tx) {
                cy += sy;
                ty += dty;
            } else {  // through a corner: both side cells must be walkable
                if (!walkable_at(level, cy, cx + sx) || !walkable_at(level, cy + sy, cx)) return false;
                cx += sx;
                cy += sy;
                tx += dtx;
                ty += dty;
            }
            if (!walkable_at(level, cy, cx)) return false;
        }
    }
    double best = kInf;
    bool too_close = false;
    for (int32_t k = 0; k < cnt; ++k) {
        const double* s = g_.walls.data() + 4 * static_cast<std::size_t>(ids[k]);
        const double o1 = orient(s[0], s[1], s[2], s[3], px, py);
        const double o2 = orient(s[0], s[1], s[2], s[3], qx, qy);
        // Starting on the wall's line (o1 == 0): leaving it or sliding along it is allowed.
        if (o1 != 0 && !((o1 > 0 && o2 > 0) || (o1 < 0 && o2 < 0))) {
            const double o3 = orient(px, py, qx, qy, s[0], s[1]), o4 = orient(px, py, qx, qy, s[2], s[3]);
            if (!((o3 > 0 && o4 > 0) || (o3 < 0 && o4 < 0))) {
                const double t = o1 / (o1 - o2);
                if (t < best) {
                    best = t;
                    if (tangent) {
                        const double dx = s[2] - s[0], dy = s[3] - s[1], len = norm2(dx, dy);
                        tangent[0] = len > 0 ? dx / len : 0.0;
                        tangent[1] = len > 0 ? dy / len : 0.0;
                    }
                }
                continue;
            }
        }
        if (clearance > 0 && best == kInf && !too_close) {
            const Closest cq = closest_point(s, qx, qy);
            if (cq.d < clearance) {
                const Closest cp = closest_point(s, px, py);
                if (cq.d < std::min(clearance, cp.d) - 1e-12) {
                    too_close = true;
                    if (tangent && cp.d > 0) {
                        tangent[0] = -(py - cp.cy) / cp.d;
                        tangent[1] = (px - cp.cx) / cp.d;
                    }
                }
            }
        }
    }
    return best == kInf && !too_close;
}

// Replaces a disallowed move p -> q by the longest allowed of: the slide along the blocking wall, the slide
// along x, the slide along y (larger component first), or no move.
void CrowdSim::clamp_move(int level, double px, double py, double& qx, double& qy, double clearance) const {
    int32_t cnt = 0;
    const int32_t* ids = wall_list(level, px, py, cnt);
    clamp_move(level, px, py, qx, qy, clearance, ids, cnt);
}

void CrowdSim::clamp_move(int level, double px, double py, double& qx, double& qy, double clearance,
                          const int32_t* ids, int32_t cnt) const {
    double t[2];
    if (move_allowed(level, px, py, qx, qy, t, clearance, ids, cnt)) return;
    const double dx = qx - px, dy = qy - py;
    if (t[0] != 0 || t[1] != 0) {
        const double s = dx * t[0] + dy * t[1];
        const double sx = px + s * t[0], sy = py + s * t[1];
        if (move_allowed(level, px, py, sx, sy, nullptr, clearance, ids, cnt)) {
            qx = sx;
            qy = sy;
            return;
        }
    }
    const bool x_first = std::fabs(dx) >= std::fabs(dy);
    for (int k = 0; k < 2; ++k) {
        const bool along_x = (k == 0) == x_first;
        const double sx = along_x ? px + dx : px, sy = along_x ? py : py + dy;
        if ((sx != px || sy != py) && move_allowed(level, px, py, sx, sy, nullptr, clearance, ids, cnt)) {
            qx = sx;
            qy = sy;
            return;
        }
    }
    qx = px;
    qy = py;
}

// Calls emit(nx, ny, d) for each wall point that is a local minimum of the distance to (x, y) within
// `cutoff`: the closest point of each wall near the agent, except an end point that another wall continues
// from closer (a wall split into pieces pushes once) and duplicates of a shared corner. n points from the
// wall to the agent.
template <typename Emit>
void CrowdSim::for_each_wall(const int32_t* ids, int32_t cnt, double x, double y, double cutoff, Scratch& sc,
                             Emit&& emit) const {
    if (cnt == 0) return;
    auto& hits = sc.hits;
    hits.clear();
    // (A wall whose bounding box is farther than the cut-off along x or y, with a margin far above rounding,
    // is out of reach: skipped without computing its closest point.)
    const double far = cutoff * (1.0 + 1e-9) + 1e-9;
    for (int32_t k = 0; k < cnt; ++k) {
        const double* s = g_.walls.data() + 4 * static_cast<std::size_t>(ids[k]);
        const double gx = std::max(std::min(s[0], s[2]) - x, x - std::max(s[0], s[2]));
        const double gy = std::max(std::min(s[1], s[3]) - y, y - std::max(s[1], s[3]));
        if (gx > far || gy > far) continue;
        const Closest c = closest_point(s, x, y);
        if (c.d <= cutoff) hits.push_back({c.cx, c.cy, c.d, ids[k], c.end});
    }
    const std::size_t m = hits.size();
    for (std::size_t a = 0; a < m; ++a) {
        const WallHit& w = hits[a];
        if (!(w.d > 0)) continue;
        if (w.end) {
            bool skip = false;
            const double tol = 1e-9 * (1.0 + std::fabs(w.cx) + std::fabs(w.cy));
            for (std::size_t b = 0; b < m && !skip; ++b) {
                if (b == a) continue;
                const WallHit& o = hits[b];
                if (o.end && o.cx == w.cx && o.cy == w.cy) {
                    skip = o.seg < w.seg;
                } else if (o.d < w.d &&
                           closest_point(g_.walls.data() + 4 * static_cast<std::size_t>(o.seg), w.cx, w.cy)
                                   .d <= tol) {
                    skip = true;
                }
            }
            if (skip) continue;
        }
        emit((x - w.cx) / w.d, (y - w.cy) / w.d, w.d);
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Step driver.

void CrowdSim::ensure_ready() {
    const int T = max_threads();
    if (static_cast<int>(scratch_.size()) < T) scratch_.resize(T);
    for (Scratch& sc : scratch_) {
        if (sc.nb.size() < 5 * 256) sc.nb.resize(5 * 256);
        if (sc.cand.size() < 256) sc.cand.resize(256);
        if (sc.ids.capacity() < 256) sc.ids.reserve(256);
        if (sc.close.size() < 5 * 256) sc.close.resize(5 * 256);
        if (sc.touch.size() < 5 * 256) sc.touch.resize(5 * 256);
        if (sc.soc.size() < 4 * 256) sc.soc.resize(4 * 256);
        if (sc.hits.capacity() < 64) sc.hits.reserve(64);
        sc.pre.resize(kBlock);
    }
    const double h = dt_ / nsub_;
    double cut, wall_reach;
    if (model_ == CrowdModel::SocialForce) {
        cut = 2.0 * max_radius_ + p_.time_gap * max_v0_ + p_.range_cutoff * p_.agent_range;
        grid_move_ = p_.speed_cap * max_v0_ * h;
        wall_reach = max_radius_ + p_.range_cutoff * p_.wall_range;
    } else {
        cut = 2.0 * max_radius_ + std::max(max_v0_ * p_.time_gap, p_.range_cutoff * p_.cfs_agent_range);
        grid_move_ = max_v0_ * h;
        wall_reach = max_radius_ + p_.range_cutoff * p_.cfs_wall_range;
    }
    cut_ = std::max(cut, 1e-3);
    // (Multiplications by these replace divisions in the per-neighbour loops: a division costs several.)
    inv_tau_ = 1.0 / p_.tau;
    inv_agent_range_ = 1.0 / p_.agent_range;
    inv_wall_range_ = 1.0 / p_.wall_range;
    // Multiple time stepping (social force): the social repulsion every social_every_ substeps, contact lists
    // in between; two agents come at most 2 social_every_ grid_move_ closer from one fresh substep to the
    // next (plus a margin for rounding in the speed cap). (The collision-free speed model has one substep per
    // step up to dt = 0.1 s; with more, its agents query the index every substep.)
    const int every = model_ == CrowdModel::SocialForce
                          ? std::max(1, static_cast<int>(std::lround(p_.social_interval / h)))
                          : 1;
    const bool lists = every > 1;
    const double skin = lists ? 2.0 * every * grid_move_ * (1.0 + 1e-9) + 1e-9 : 0.0;
    if (lists != lists_ || skin != skin_ || every != social_every_) lists_valid_ = false;
    lists_ = lists;
    skin_ = skin;
    social_every_ = every;
    // Index cells: half the largest query radius (the lists' reach), but at most about two cells per agent.
    const double reach_q = cut_ + skin_;
    const double width = g_.nx * g_.cell_size, height = g_.ny * g_.cell_size;
    const double area = static_cast<double>(g_.levels) * width * height;
    const double cell =
        std::max(0.5 * reach_q, std::sqrt(area / (2.0 * static_cast<double>(std::max<int64_t>(n_, 1)))));
    fnx_ = std::max(1, static_cast<int>(std::ceil(width / cell)));
    fny_ = std::max(1, static_cast<int>(std::ceil(height / cell)));
    finv_ = 1.0 / cell;
    fstart_.resize(static_cast<std::size_t>(g_.levels) * fny_ * fnx_ + 2);
    fids_.resize(static_cast<std::size_t>(n_));
    list_.resize(static_cast<std::size_t>(n_) * kListCap);
    list_n_.resize(static_cast<std::size_t>(n_));
    social_.resize(lists_ ? 2 * static_cast<std::size_t>(n_) : 0);
    // Walls near an agent: those it interacts with and those a move of one substep (or a stair exit offset)
    // could cross.
    // (3 radii: the deadlock test looks for room one body length ahead.)
    double reach = std::max({wall_reach, grid_move_, 3.0 * static_cast<double>(max_radius_)});
    for (const Stair& st : stairs_) reach = std::max(reach, 0.5 * st.width);
    ensure_wall_bins(reach + 0.05);
}

// Counting sort of the floor agents (WAITING, WALKING) by index cell of their current position; the others
// follow, in slot order. (Each agent's cell is found twice, to count and to place it: no scratch.)
void CrowdSim::build_floor_index() {
    const int64_t n = n_;
    const uint32_t nc = static_cast<uint32_t>(fstart_.size() - 2);  // the others go to "cell" nc
    const double* po = pos_[0].data();
    const int8_t* state = state_.data();
    const int32_t* level = level_.data();
    const double* org = g_.origins.data();
    const double inv = finv_;
    const int fnx = fnx_, fny = fny_;
    uint32_t* start = fstart_.data();
    std::fill(fstart_.begin(), fstart_.end(), 0u);
    // (Serial: a few nanoseconds per agent, and no extra meeting point of the threads, which costs more than
    // that when the machine is shared.)
    auto key = [&](int64_t i) {
        const int8_t st = state[i];
        if (st != kCrowdWaiting && st != kCrowdWalking) return nc;
        const int l = level[i];
        const int cx = floor_axis((po[2 * i] - org[2 * l]) * inv, fnx);
        const int cy = floor_axis((po[2 * i + 1] - org[2 * l + 1]) * inv, fny);
        return static_cast<uint32_t>((static_cast<int64_t>(l) * fny + cy) * fnx + cx);
    };
    for (int64_t i = 0; i < n; ++i) ++start[key(i) + 1];
    for (uint32_t c = 1; c <= nc + 1; ++c) start[c] += start[c - 1];
    int32_t* ids = fids_.data();
    for (int64_t i = 0; i < n; ++i) ids[start[key(i)]++] = static_cast<int32_t>(i);
    for (uint32_t c = nc + 1; c > 0; --c) start[c] = start[c - 1];
    start[0] = 0;
    joined_.clear();
    if (!lists_) left_floor_ = false;  // (with lists: at the next fresh substep)
}

// Agent i came off a stair onto a floor in this substep: it joins the contact lists of the floor agents that
// can touch it before the next fresh substep. It has no list of its own (nor a held social repulsion): until
// then it queries the index. (Serial, in the stair phase: positions are the new ones.)
void CrowdSim::join_lists(int64_t i) {
    const double* pn = pos_[1].data();
    const int8_t* state = state_.data();
    const double reach = 2.0 * max_radius_ + skin_, reach2 = reach * reach;
    const int l = level_[i];
    const double x = pn[2 * i], y = pn[2 * i + 1];
    list_n_[i] = kListOverflow;
    auto append = [&](int64_t a, int64_t b) {
        uint8_t& c = list_n_[a];
        if (c == kListOverflow) return;
        const int64_t d = b - a;
        if (c >= kListCap || d < INT16_MIN || d > INT16_MAX) {  // (full, or pooled: no room to append)
            c = kListOverflow;
        } else {
            list_[a * kListCap + c++] = static_cast<int16_t>(d);
        }
    };
    auto consider = [&](int64_t j) {
        if (j == i || level_[j] != l || (state[j] != kCrowdWaiting && state[j] != kCrowdWalking)) return;
        const double dx = pn[2 * j] - x, dy = pn[2 * j + 1] - y;
        if (!(dx * dx + dy * dy <= reach2)) return;
        append(j, i);
    };
    // The index holds positions up to a step old (each moved at most nsub_ grid_move_ since).
    for_each_floor_run(l, x, y, reach + nsub_ * grid_move_, [&](const int32_t* a, const int32_t* b) {
        for (; a < b; ++a) consider(*a);
    });
    for (const int32_t j : joined_) consider(j);  // (i itself is the last of them)
}

// Agents that left through an exit in the last substep: both buffers get the final position and zero
// velocity (they are not updated any more).
void CrowdSim::sync_evacuated() {
    double* p0 = pos_[0].data();
    double* p1 = pos_[1].data();
    double* v0 = vel_[0].data();
    double* v1 = vel_[1].data();
    for (const int64_t i : evacuated_) {
        p1[2 * i] = p0[2 * i];
        p1[2 * i + 1] = p0[2 * i + 1];
        v0[2 * i] = v0[2 * i + 1] = v1[2 * i] = v1[2 * i + 1] = 0.0;
    }
    evacuated_.clear();
}

// A stuck agent is deadlocked (not merely queueing behind others) if there is room for it one body length
// ahead along its field direction (an arch or lock holds it, e.g. at door jambs), or if the nearest agent
// ahead of it is still waiting or wants to go a way more than 60 degrees off its own (head-on or crossing,
// which lock each other at door jambs); an agent in a queue has neither. nb lists the floor agents within
// `complete` of the agent (at least 3 r + max_radius_: all that can take the room ahead); if nobody of them
// is ahead and complete < cut_, the answer is unknown (-1): look farther. Reads only the previous state:
// thread-independent.
int CrowdSim::deadlocked(double t, int l, double x, double y, double ex, double ey, double r,
                         const double* nb, std::size_t nn, double complete) const {
    const double qx = x + 2.0 * r * ex, qy = y + 2.0 * r * ey;
    int qy_cell = 0, qx_cell = 0;
    bool room = locate(qx, qy, l, qy_cell, qx_cell) && (cell_info_[flat(l, qy_cell, qx_cell)] & kWalkBit);
    if (room && model_ == CrowdModel::CollisionFreeSpeed) {  // a disc fits there: no wall closer than r
        int32_t cnt = 0;
        const int32_t* ids = wall_list(l, x, y, cnt);
        for (int32_t k = 0; k < cnt && room; ++k)
            room = closest_point(g_.walls.data() + 4 * static_cast<std::size_t>(ids[k]), qx, qy).d >= r;
    }
    if (room) {
        for (std::size_t k = 0; k < nn && room; ++k) {
            const double* e = nb + 5 * k;
            room = norm2(x + e[0] - qx, y + e[1] - qy) >= e[3];
        }
        if (room) return 1;
    }
    double best = kInf;
    int64_t blocker = -1;
    for (std::size_t k = 0; k < nn; ++k) {
        const double* e = nb + 5 * k;
        const double proj = ex * e[0] + ey * e[1];
        if (proj <= 0 || std::fabs(ex * e[1] - ey * e[0]) >= e[3] || e[2] >= best) continue;
        best = e[2];
        blocker = static_cast<int64_t>(e[4]);
    }
    // No room ahead and nobody in the way: the agent is pinned against the geometry (a door jamb or a corner
    // its route grazes) and would stand there for ever; an unstick episode turns it along the wall.
    if (blocker < 0) return complete < cut_ ? -1 : 1;
    // A blocker that is still waiting (pre-movement) is an obstacle to walk round. (Its start time, not its
    // state, is read: the state may change in this same substep on another thread.)
    if (t + 1e-9 < static_cast<double>(start_time_[blocker])) return 1;
    const double* po = pos_[0].data();
    double bx, by;
    nav_direction(field_[blocker], l, po[2 * blocker], po[2 * blocker + 1], bx, by);
    return bx * ex + by * ey < 0.5 ? 1 : 0;  // more than 60 degrees apart: crossing or opposing ways
}

// The start of update_agent for a floor agent: its cell and its desired direction for this substep (sampled
// from its field at the step's first substep, or when it has just started, left a stair or been re-routed,
// and kept, quantised to int16, for the step's substeps). Run for a block of agents before their updates: the
// agents are independent, so their chains of divisions and cache misses overlap. Reads the old state only.
void CrowdSim::prepare_agent(int64_t i, double t, int sub, Pre& p) {
    const int8_t st = state_[i];
    p.walking =
        st == kCrowdWalking || (st == kCrowdWaiting && !(t + 1e-9 < static_cast<double>(start_time_[i])));
    if (!p.walking) return;
    const int l = level_[i];
    const double x = pos_[0][2 * i], y = pos_[0][2 * i + 1];
    locate(x, y, l, p.iy, p.ix);  // (always inside: floor agents stand in walkable cells)
    int16_t* dq = dir_.data() + 2 * i;
    p.first_walk = dq[0] == kNoDir;  // (also after a stair, a re-route or new fields: harmless)
    double ex, ey;
    if (sub == 0 || p.first_walk) {
        nav_direction(field_[i], l, x, y, ex, ey);
        dq[0] = static_cast<int16_t>(round_half_away(ex * 32767.0));
        dq[1] = static_cast<int16_t>(round_half_away(ey * 32767.0));
    }
    ex = dq[0];
    ey = dq[1];
    if (ex != 0 || ey != 0) {  // (the unit vector along the quantised one; one division)
        const double inv = 1.0 / norm2(ex, ey);
        ex *= inv;
        ey *= inv;
    }
    p.ex = ex;
    p.ey = ey;
}

template <CrowdModel M>
void CrowdSim::update_agent(int64_t i, double t, double h, int sub, bool last, const Pre& pre, Scratch& sc) {
    int8_t* state = state_.data();
    int8_t st = state[i];
    if (st == kCrowdEvacuated) return;
    if (st == kCrowdWaiting) {
        // Both buffers hold the same position and a zero velocity: nothing to write until the agent starts.
        if (t + 1e-9 < static_cast<double>(start_time_[i])) {
            if (fresh_)
                list_n_[i] = kListOverflow;  // (no list: if it starts before the next fresh one, it queries)
            return;
        }
        st = kCrowdWalking;
        // (Other threads may read it, as a neighbour's state: waiting and walking agents are both on the
        // floor, so they see either.)
        __atomic_store_n(&state[i], st, __ATOMIC_RELAXED);
    }
    const double* po = pos_[0].data();
    double* pn = pos_[1].data();
    const double* vo = vel_[0].data();
    double* vn = vel_[1].data();
    int32_t* queue = queue_since_.data();

    if (st == kCrowdOnStair) {
        const Stair& S = stairs_[stair_index_[i]];
        const int from = stair_end_[i], to = 1 - from;
        const bool up = g_.level_z[S.level[to]] > g_.level_z[S.level[from]] ||
                        (g_.level_z[S.level[to]] == g_.level_z[S.level[from]] && S.level[to] > S.level[from]);
        const double speed = up ? up_[i] : down_[i];
        double s = stair_s_[i] + speed * h;
        if (s >= S.length) {
            s = S.length;
            if (queue[i] < 0) queue[i] = static_cast<int32_t>(substep_count_);
            sc.stair.push_back(i);
        }
        stair_s_[i] = static_cast<float>(s);
        const double f = s / S.length, off = stair_off_[i];
        const double x = S.end[from][0] + (S.end[to][0] - S.end[from][0]) * f - off * S.axis[1];
        const double y = S.end[from][1] + (S.end[to][1] - S.end[from][1]) * f + off * S.axis[0];
        pn[2 * i] = x;
        pn[2 * i + 1] = y;
        vn[2 * i] = (x - po[2 * i]) / h;
        vn[2 * i + 1] = (y - po[2 * i + 1]) / h;
        z_[i] = static_cast<float>(g_.level_z[S.level[from]] +
                                   (g_.level_z[S.level[to]] - g_.level_z[S.level[from]]) * f);
        return;
    }

    // Walking on a floor.
    const int l = level_[i];
    const double x = po[2 * i], y = po[2 * i + 1];
    const int iy0 = pre.iy, ix0 = pre.ix;  // its cell
    int32_t wn = 0;
    const int32_t* wl = wall_list_cell(l, iy0, ix0, wn);  // walls near the agent (interaction, move clamp)
    const double r = radius_[i], v0 = v0_[i];
    double ex = pre.ex, ey = pre.ey;
    const bool first_walk = pre.first_walk;
    const bool has_dir = ex != 0 || ey != 0;
    float& stuck = stuck_[i];
    float& ema = progress_[i];
    const double e0x = ex, e0y = ey;  // the field's direction (progress is measured along it)
    // Deadlock resolution while an unstick episode runs: the social force turns its desired direction aside;
    // the collision-free speed model probes turned directions for a free one (below). First episode: right.
    const bool unsticking = has_dir && stuck < 0;
    // unstick_: episodes in a row without progress (low 16 bits) and all episodes (high 16 bits, for the
    // RNG).
    const uint32_t unst = static_cast<uint32_t>(unstick_[i]);
    const uint64_t episode = unst >> 16, in_a_row = unst & 0xFFFFu;
    double side0 = -1.0;
    if (unsticking && episode > 1 &&
        uniform01(seed_, static_cast<uint64_t>(id_of_[i]), 2 * episode + 1) >= 0.5)
        side0 = 1.0;
    if (unsticking) {
        // Pressed against a wall (the desired direction points into the nearest wall within a body radius and
        // a cell): turn to the side along the wall the desired direction leans to, not a fixed or random one.
        int32_t cnt = 0;
        const int32_t* ids = wall_list(l, x, y, cnt);
        Closest best{0, 0, r + g_.cell_size, false};
        for (int32_t k = 0; k < cnt; ++k) {
            const Closest c = closest_point(g_.walls.data() + 4 * static_cast<std::size_t>(ids[k]), x, y);
            if (c.d < best.d) best = c;
        }
        if (best.d < r + g_.cell_size && best.d > 0) {
            const double nx = (x - best.cx) / best.d, ny = (y - best.cy) / best.d;  // wall -> agent
            const double into = ex * nx + ey * ny;
            if (into < 0) {
                const double tx = ex - into * nx, ty = ey - into * ny;  // the slide along the wall
                const double cross = ex * ty - ey * tx;                 // > 0: the slide is to the left
                if (std::fabs(cross) > 1e-9) side0 = cross > 0 ? 1.0 : -1.0;
            }
        }
    }
    // First episode in a row (both models): the desired direction turns aside. Later episodes of the
    // collision- free speed model: probes and squeezing (below).
    const bool turn = unsticking && (M == CrowdModel::SocialForce || in_a_row <= 1);
    const bool probe = unsticking && M == CrowdModel::CollisionFreeSpeed && in_a_row > 1;
    {
        if (turn) {
            const double mag =
                p_.unstick_angle *
                (0.75 + 0.5 * uniform01(seed_, static_cast<uint64_t>(id_of_[i]), 2 * episode)) * kPi / 180.0;
            const double c = std::cos(side0 * mag), s = std::sin(side0 * mag);
            const double rx = c * ex - s * ey, ry = s * ex + c * ey;
            ex = rx;
            ey = ry;
        }
    }

    // Neighbours: the floor agents (as at the start of this substep) within the agent's cut-off, from its
    // list or else from the index (whose positions are `sub` substeps old) and the agents that came off
    // stairs since it was built. Entries: dx, dy, distance, l_ij = r_i + r_j, j. The cut-off is the agent's
    // own: contact + the farther of the repulsion's reach and its own headway (social force: time_gap * v0
    // beyond the repulsion's reach; collision-free speed: time_gap * v0); nothing farther acts on it. (cut_
    // is the largest; the deadlock test looks that far.)
    const double rc_soc = p_.range_cutoff * p_.agent_range;
    const double cut_i =
        std::min(cut_, r + max_radius_ +
                           (M == CrowdModel::SocialForce
                                ? p_.time_gap * v0 + rc_soc
                                : std::max(v0 * p_.time_gap, p_.range_cutoff * p_.cfs_agent_range)));
    double cut_now = cut_i, cut2 = cut_i * cut_i;
    const float* radius = radius_.data();
    std::size_t nn = 0;
    double* nbw = sc.nb.data();
    const bool check = left_floor_;  // some listed agents may have left the floors
    // Appends the candidates j = id(k), k < m, that can act on the agent (not itself, nor a coincident
    // centre, which has no direction) and, if check_state, are still on a floor. Which can act (Mode):
    // kWithinCut, closer than cut_now; kInContact, closer than l_ij = r_i + r_j; kSocialReach, closer than
    // cut_now and either within l_ij + near_reach or in the agent's lane ahead (what the social force's loop
    // does not skip, and everyone it can touch within the step). Branch-free: every candidate is written,
    // only those kept advance; kInContact and kSocialReach, which keep a small share, in two passes: the
    // candidates kept (to `cand`; those off the floors dropped in a pass of their own), then their entries.
    // (Only locals in the loops: the writes through the entries would otherwise make the compiler reload
    // every captured variable for every candidate.)
    enum Mode { kWithinCut, kInContact, kSocialReach };
    const double near_reach = std::max(rc_soc, skin_);
    auto add_ids = [&](auto mode, auto id, std::size_t m, bool check_state) {
        constexpr int kMode = decltype(mode)::value;
        if (5 * (nn + m + 1) > sc.nb.size()) {
            sc.nb.resize(std::max(2 * sc.nb.size(), 5 * (nn + m + 1)));
            nbw = sc.nb.data();
        }
        if (sc.cand.size() < m) sc.cand.resize(std::max(2 * sc.cand.size(), m));
        double* const w = nbw + 5 * nn;
        int64_t* const cand = sc.cand.data();
        const double* const P = po;
        const float* const rad = radius;
        const int8_t* const st = state;
        const double X = x, Y = y, R = r, C2 = cut2, EX = ex, EY = ey, NR = near_reach;
        std::size_t cnt = 0;
        if constexpr (kMode == kWithinCut) {  // (most candidates are kept: one pass)
            for (std::size_t k = 0; k < m; ++k) {
                const int64_t j = id(k);
                const double dx = P[2 * j] - X, dy = P[2 * j + 1] - Y;
                const double d2 = dx * dx + dy * dy;
                double* e = w + 5 * cnt;
                e[0] = dx;
                e[1] = dy;
                e[2] = std::sqrt(d2);
                e[3] = R + rad[j];
                e[4] = static_cast<double>(j);
                bool keep = (d2 > 0) & (d2 <= C2);
                if (check_state) keep &= __atomic_load_n(&st[j], __ATOMIC_RELAXED) <= kCrowdWalking;
                cnt += static_cast<std::size_t>(keep);
            }
            nn += cnt;
            return;
        }
        for (std::size_t k = 0; k < m; ++k) {
            const int64_t j = id(k);
            const double dx = P[2 * j] - X, dy = P[2 * j + 1] - Y;
            const double d2 = dx * dx + dy * dy;
            const double lij = R + rad[j];
            cand[cnt] = j;
            bool keep = (d2 > 0);
            if constexpr (kMode == kInContact) {
                keep &= d2 < lij * lij;
            } else {
                const double fwd = EX * dx + EY * dy, lat = EX * dy - EY * dx;
                keep &=
                    (d2 <= C2) & ((d2 <= (lij + NR) * (lij + NR)) | ((fwd > 0) & (lat * lat < lij * lij)));
            }
            cnt += static_cast<std::size_t>(keep);
        }
        // (The state in a pass of its own: in the first, the compiler branches on `keep` to skip its load,
        // and those branches, taken at random, cost more than the loads.)
        if (check_state) {
            std::size_t c2 = 0;
            for (std::size_t k = 0; k < cnt; ++k) {
                const int64_t j = cand[k];
                cand[c2] = j;
                c2 += static_cast<std::size_t>(__atomic_load_n(&st[j], __ATOMIC_RELAXED) <= kCrowdWalking);
            }
            cnt = c2;
        }
        for (std::size_t k = 0; k < cnt; ++k) {
            const int64_t j = cand[k];
            const double dx = P[2 * j] - X, dy = P[2 * j + 1] - Y;
            double* e = w + 5 * k;
            e[0] = dx;
            e[1] = dy;
            e[2] = std::sqrt(dx * dx + dy * dy);
            e[3] = R + rad[j];
            e[4] = static_cast<double>(j);
        }
        nn += cnt;
    };
    // From the index (agents within cut_now of their positions at its build plus what they moved since, `sub`
    // substeps) and the agents that came off stairs since it was built: those that can act (mode) and are
    // still on a floor. (The index's runs, one per row of cells, are gathered first and filtered in one pass:
    // a pass per run costs its set-up several times per agent; measured 3-6 % of a social force step in a
    // dense queue.)
    auto add_from_index = [&](auto mode) {
        std::vector<int32_t>& ids = sc.ids;
        ids.clear();
        for_each_floor_run(l, x, y, cut_now + sub * grid_move_,
                           [&ids](const int32_t* a, const int32_t* b) { ids.insert(ids.end(), a, b); });
        for (const int32_t j : joined_) {
            if (level_[j] == l) ids.push_back(j);
        }
        const int32_t* a = ids.data();
        add_ids(mode, [a](std::size_t k) { return static_cast<int64_t>(a[k]); }, ids.size(), check);
    };
    const std::integral_constant<int, kWithinCut> within_cut{};
    // Social force with multiple time stepping (lists_): at a fresh substep, the neighbours within reach from
    // the index and the agents that came off stairs since it was built, and the agent's contact list from
    // them; in between, only the listed agents in contact (the social repulsion is held: `held`). Without a
    // list, the neighbours within reach from the index every substep.
    const uint8_t listed = lists_ && !fresh_ ? list_n_[i] : kListOverflow;
    const bool held = listed != kListOverflow;
    if (fresh_) {
        // Reach: contact + the headway at the agent's speed along its direction now + the repulsion's reach
        // (what the force loop does not skip: in a queue much less than cut_i, which allows for walking at
        // v0), or contact + skin_ (the contact list), if farther.
        const double prog = std::max(0.0, vo[2 * i] * ex + vo[2 * i + 1] * ey);
        const double reach =
            std::max(r + max_radius_ + p_.time_gap * std::min(prog, v0) + rc_soc, r + max_radius_ + skin_) *
                (1.0 + 1e-12) +
            1e-12;
        cut_now = reach;
        cut2 = reach * reach;
        add_from_index(std::integral_constant<int, kSocialReach>{});
        // Up to kListCap entries are kept in the agent's own slots, more in the shared pool (its offset and
        // count in the agent's slots); an agent whose entries do not fit queries the index every substep (the
        // same neighbours in the same order: its results do not depend on where its list is).
        // (Branch-free: every entry is written, those within contact + skin_ advance; `far`: one of them is
        // too far in slots for an int16 offset.)
        int kept = 0;
        constexpr int kBuf = 256;
        bool fits = nn <= static_cast<std::size_t>(kBuf);
        int16_t keep[kBuf];
        const double skin = skin_;
        bool far = false;
        for (std::size_t k = 0; k < (fits ? nn : 0); ++k) {
            const double* e = nbw + 5 * k;
            const bool in = e[2] <= e[3] + skin;
            const int64_t d = static_cast<int64_t>(e[4]) - i;
            far |= in & ((d < INT16_MIN) | (d > INT16_MAX));
            keep[kept] = static_cast<int16_t>(d);
            kept += static_cast<int>(in);
        }
        fits &= !far;
        int16_t* out = list_.data() + i * kListCap;
        uint8_t state_of_list = kListOverflow;
        if (fits && kept <= kListCap) {
            std::copy(keep, keep + kept, out);
            state_of_list = static_cast<uint8_t>(kept);
        } else if (fits) {
            const uint64_t at =
                __atomic_fetch_add(&pool_used_, static_cast<uint64_t>(kept), __ATOMIC_RELAXED);
            if (at + kept <= pool_.size()) {  // (else: the pool grows before the next step)
                std::copy(keep, keep + kept, pool_.data() + at);
                const uint32_t at32 = static_cast<uint32_t>(at);
                std::memcpy(out, &at32, sizeof at32);
                out[2] = static_cast<int16_t>(kept);
                state_of_list = kListPooled;
            }
        }
        list_n_[i] = state_of_list;
    } else if (held) {
        const int16_t* li = list_.data() + i * kListCap;
        int count = listed;
        if (listed == kListPooled) {
            uint32_t at = 0;
            std::memcpy(&at, li, sizeof at);
            count = li[2];
            li = pool_.data() + at;
        }
        add_ids(
            std::integral_constant<int, kInContact>{}, [li, i](std::size_t k) { return i + li[k]; },
            static_cast<std::size_t>(count), check);
    } else {
        add_from_index(within_cut);
    }
    const double* nb = sc.nb.data();

    double qx = x, qy = y, vx = 0, vy = 0;
    int iy = iy0, ix = ix0;  // the cell of q, if q_inside
    // A move to (ux, uy) within the agent's cell with no wall near is allowed (clamp_move would keep it, at
    // any clearance). (The cell's float64 borders as in locate.)
    auto free_move = [&, h0 = g_.cell_size, cx0 = g_.origins[2 * l], cy0 = g_.origins[2 * l + 1]](double ux,
                                                                                                  double uy) {
        return wn == 0 && cx0 + ix0 * h0 <= ux && ux < cx0 + (ix0 + 1) * h0 && cy0 + iy0 * h0 <= uy &&
               uy < cy0 + (iy0 + 1) * h0;
    };
    bool q_inside = true;
    if constexpr (M == CrowdModel::SocialForce) {
        const double mass = p_.mass;
        const double fric_cap = 0.25 * mass / h;  // one substep cannot reverse a relative tangential velocity
        const double vix = vo[2 * i], viy = vo[2 * i + 1];
        double fx = mass * (v0 * ex - vix) * inv_tau_, fy = mass * (v0 * ey - viy) * inv_tau_;
        // Body force and sliding friction of a neighbour in contact (entry e: dist < l_ij); n from j to i.
        auto contact = [&](const double* e) {
            const double inv = 1.0 / e[2];
            const double nx = -e[0] * inv, ny = -e[1] * inv;
            const double g = e[3] - e[2];
            const int64_t j = static_cast<int64_t>(e[4]);
            const double tx = -ny, ty = nx;
            const double dvt = (vo[2 * j] - vix) * tx + (vo[2 * j + 1] - viy) * ty;
            const double fr = std::min(p_.friction * g, fric_cap) * dvt;
            const double rep = p_.body_force * g;
            fx += fr * tx + rep * nx;
            fy += fr * ty + rep * ny;
        };
        double sx = 0.0, sy = 0.0;  // social repulsion
        if (held) {                 // (nb: the listed agents in contact)
            sx = social_[2 * i];
            sy = social_[2 * i + 1];
            for (std::size_t k = 0; k < nn; ++k) contact(nb + 5 * k);
        } else {
            const double reach_a = rc_soc;
            const double prog = std::max(0.0, vix * ex + viy * ey);  // speed along the desired direction
            const double headway = p_.time_gap * std::min(prog, v0);
            // The social repulsion of each neighbour (0 out of its reach), in a vectorised pass (no branches,
            // every lane the same bits as scalar code), then summed in order with the contact forces.
            // The space kept ahead grows with the walking speed: the social term acts on the gap beyond
            // l_ij + time_gap * u * lane, u the speed along the desired direction (clamped to [0, v0]) and
            // lane = 1 - b / l_ij for j ahead at a lateral offset b from the line of walking (0 beside or
            // behind: only who is in the way; Seyfried et al. 2006, d = a + b v; Chraibi et al. 2010). Its
            // angular weight is Helbing & Molnar's (1995): lambda + (1 - lambda) (1 + cos phi) / 2 (those
            // behind count less).
            // (The entries' columns are copied first: rows of 5 do not vectorise. Out of reach, 0 x n adds
            // nothing below; a contact is always within reach.)
            if (sc.soc.size() < 4 * nn) sc.soc.resize(4 * nn + 64);
            double* const soc_x = sc.soc.data();  // (in: dx; out: the x component)
            double* const soc_y = soc_x + nn;     // (in: dy)
            double* const dst = soc_y + nn;
            double* const lsum = dst + nn;
            for (std::size_t k = 0; k < nn; ++k) {
                soc_x[k] = nb[5 * k];
                soc_y[k] = nb[5 * k + 1];
                dst[k] = nb[5 * k + 2];
                lsum[k] = nb[5 * k + 3];
            }
            const double A = p_.agent_strength, inv_B = inv_agent_range_, lambda = p_.anisotropy, EX = ex,
                         EY = ey;
#pragma omp simd
            for (std::size_t k = 0; k < nn; ++k) {
                const double dx = soc_x[k], dy = soc_y[k], dist = dst[k], lij = lsum[k];
                const double fwd = EX * dx + EY * dy, lat = std::fabs(EX * dy - EY * dx);
                const double lane = fwd > 0 ? std::max(0.0, 1.0 - lat / lij) : 0.0;
                const double lsoc = lij + headway * lane;
                const double inv = 1.0 / dist;
                const double cosphi = fwd * inv;
                const double w =
                    A * exp_vec((lsoc - dist) * inv_B) * (lambda + (1.0 - lambda) * 0.5 * (1.0 + cosphi));
                const double soc = dist - lsoc > reach_a ? 0.0 : w;
                soc_x[k] = soc * (-dx * inv);  // (n from j to i)
                soc_y[k] = soc * (-dy * inv);
            }
            for (std::size_t k = 0; k < nn; ++k) {
                sx += soc_x[k];
                sy += soc_y[k];
                const double* e = nb + 5 * k;
                if (e[2] < e[3]) contact(e);
            }
            // Social repulsion can stop a pedestrian but not walk it backwards: its component against the
            // desired direction is capped at the driving force at rest, m v0 / tau (the angular weight is not
            // reciprocal, so in a dense crowd the people ahead would push everyone back). Contact forces and
            // walls still can.
            const double back = -(sx * ex + sy * ey), back_cap = mass * v0 / p_.tau;
            if (back > back_cap) {
                sx += (back - back_cap) * ex;
                sy += (back - back_cap) * ey;
            }
            if (fresh_) {  // held until the next fresh substep (as float: what they read)
                social_[2 * i] = static_cast<float>(sx);
                social_[2 * i + 1] = static_cast<float>(sy);
                sx = social_[2 * i];
                sy = social_[2 * i + 1];
            }
        }
        fx += sx;
        fy += sy;
        for_each_wall(
            wl, wn, x, y, r + p_.range_cutoff * p_.wall_range, sc, [&](double nx, double ny, double d) {
                double rep = p_.wall_strength * std::exp((r - d) * inv_wall_range_);
                if (d < r) {
                    const double g = r - d;
                    rep += p_.wall_body_force * g;
                    const double tx = -ny, ty = nx;
                    const double fr = -std::min(p_.wall_friction * g, fric_cap) * (vix * tx + viy * ty);
                    fx += fr * tx;
                    fy += fr * ty;
                }
                fx += rep * nx;
                fy += rep * ny;
            });
        const double h_m = h / mass;
        vx = vix + fx * h_m;
        vy = viy + fy * h_m;
        const double sp = norm2(vx, vy), vmax = p_.speed_cap * v0;
        if (sp > vmax) {
            vx *= vmax / sp;
            vy *= vmax / sp;
        }
        qx = x + h * vx;
        qy = y + h * vy;
        if (!free_move(qx, qy)) {
            q_inside = false;
            clamp_move(l, x, y, qx, qy, 0.0, wl, wn);
            if (qx != x + h * vx || qy != y + h * vy) {  // blocked: keep only the motion that happened
                vx = (qx - x) / h;
                vy = (qy - y) / h;
            }
        }
    } else {
        if (has_dir) {
            // During an unstick episode the agent squeezes: its radius counts unstick_shrink smaller (bodies
            // are not rigid discs; this is what breaks arches at doors, where nobody can back off).
            const double shrink =
                unsticking
                    ? std::min(p_.unstick_shrink_max, p_.unstick_shrink * static_cast<double>(in_a_row)) * r
                    : 0.0;
            double ax = ex, ay = ey;
            const double a = p_.cfs_agent_strength, D = p_.cfs_agent_range, reach_a = p_.range_cutoff * D;
            for (std::size_t k = 0; k < nn; ++k) {
                const double* e = nb + 5 * k;
                const double dist = e[2], lij = e[3] - shrink;
                if (dist - lij > reach_a) continue;
                const double w = a * std::exp((lij - dist) / D) / dist;
                ax -= w * e[0];
                ay -= w * e[1];
            }
            // Walls deflect but never turn an agent back: the wall term's component against the desired
            // direction is dropped (with the plain term, agents at door jambs are pushed back into the crowd
            // and bottlenecks clog, as in JuPedSim). Discs never move into walls (clamp with clearance r).
            const double aw = p_.cfs_wall_strength, Dw = p_.cfs_wall_range, rw = r - shrink;
            double wx = 0, wy = 0;
            for_each_wall(wl, wn, x, y, rw + p_.range_cutoff * Dw, sc, [&](double nx, double ny, double d) {
                const double w = aw * std::exp((rw - d) / Dw);
                wx += w * nx;
                wy += w * ny;
            });
            const double back = wx * ex + wy * ey;
            if (back < 0) {
                wx -= back * ex;
                wy -= back * ey;
            }
            ax += wx;
            ay += wy;
            const double an = norm2(ax, ay);
            if (an > 1e-12) {
                ax /= an;
                ay /= an;
            } else {
                ax = ex;
                ay = ey;
            }
            // Speed: spacing s to the nearest agent ahead, i.e. within the strip of width l_ij along the
            // direction (Tordeux et al.) and within cone_angle of it; min(v0, max(0, (s - l) / T)).
            const double T = p_.time_gap, cone = cone_cos_;
            // Only neighbours closer than l_ij + v0 T can slow the agent, and (a move being at most h v0)
            // only those closer than l_ij + 2 h v0 can limit its move: copied (in order) for the loops below,
            // which probing runs many times.
            if (sc.close.size() < 5 * nn) sc.close.resize(5 * nn);
            if (sc.touch.size() < 5 * nn) sc.touch.resize(5 * nn);
            double* const cl = sc.close.data();
            double* const tl = sc.touch.data();
            std::size_t nc = 0, nt = 0;
            const double slow_gap = v0 * T * (1.0 + 1e-12) + 1e-12,
                         touch_gap = 2.0 * h * v0 * (1.0 + 1e-12) + 1e-12;
            for (std::size_t k = 0; k < nn; ++k) {  // (branch-free: written always, kept if it counts)
                const double* e = nb + 5 * k;
                const double gap = e[2] - (e[3] - shrink);
                double* c = cl + 5 * nc;
                double* u = tl + 5 * nt;
                for (int q = 0; q < 5; ++q) c[q] = u[q] = e[q];
                nc += static_cast<std::size_t>(gap < slow_gap);
                nt += static_cast<std::size_t>(gap < touch_gap);
            }
            auto speed_along = [&](double dx, double dy) {
                double sp = v0;
                for (std::size_t k = 0; k < nc; ++k) {
                    const double* e = cl + 5 * k;
                    if (dx * e[0] + dy * e[1] <= cone * e[2]) continue;
                    const double lij = e[3] - shrink;
                    if (std::fabs(dx * e[1] - dy * e[0]) >= lij) continue;
                    sp = std::min(sp, (e[2] - lij) / T);
                }
                return std::max(0.0, sp);
            };
            // The move actually made for a wanted displacement (dx, dy): clamped by walls, then the
            // collision-free guarantee: no agent closes more than half of any gap in one substep, so two
            // agents moving at once never overlap (|x_j' - x_i'| >= d - a_i - a_j >= l). The excess approach
            // is first projected out (agents slide along each other; three Gauss-Seidel passes, kept if walls
            // allow), then what remains is scaled down.
            auto resolve = [&](double& dx, double& dy) {
                double tx = x + dx, ty = y + dy;
                if (!free_move(tx, ty)) clamp_move(l, x, y, tx, ty, rw, wl, wn);
                dx = tx - x;
                dy = ty - y;
                double sx = dx, sy = dy;
                bool slid = false;
                for (int pass = 0; pass < 3; ++pass) {
                    for (std::size_t k = 0; k < nt; ++k) {
                        const double* e = tl + 5 * k;
                        const double appr = (sx * e[0] + sy * e[1]) / e[2];
                        const double allow = 0.5 * std::max(0.0, e[2] - (e[3] - shrink));
                        if (appr > allow) {
                            sx -= (appr - allow) * e[0] / e[2];
                            sy -= (appr - allow) * e[1] / e[2];
                            slid = true;
                        }
                    }
                }
                if (slid && (free_move(x + sx, y + sy) ||
                             move_allowed(l, x, y, x + sx, y + sy, nullptr, rw, wl, wn))) {
                    dx = sx;
                    dy = sy;
                }
                double scale = 1.0;
                for (std::size_t k = 0; k < nt; ++k) {
                    const double* e = tl + 5 * k;
                    const double appr = (dx * e[0] + dy * e[1]) / e[2];
                    if (appr <= 0) continue;
                    const double allow = 0.5 * std::max(0.0, e[2] - (e[3] - shrink));
                    if (appr > allow) scale = std::min(scale, allow / appr);
                }
                dx *= scale;
                dy *= scale;
            };
            const double speed = speed_along(ax, ay);
            double dx = h * speed * ax, dy = h * speed * ay;
            resolve(dx, dy);
            if (probe) {
                // Probe directions turned from e0 by 0, 30, ..., 180 degrees (side0 first) and keep the move
                // with the most progress along e0 (+ 0.1 x its length: backing off opens room);
                // deterministic.
                double best = dx * ex + dy * ey + 0.1 * norm2(dx, dy);
                for (int k = 0; k <= 6; ++k) {
                    for (const double side : {side0, -side0}) {
                        if ((k == 0 || k == 6) && side != side0) continue;
                        const double ang = side * k * kPi / 6.0, c = std::cos(ang), s = std::sin(ang);
                        const double ux = c * ex - s * ey, uy = s * ex + c * ey;
                        const double sp = speed_along(ux, uy);
                        if (!(sp > 0)) continue;
                        double mx = h * sp * ux, my = h * sp * uy;
                        resolve(mx, my);
                        const double score = mx * ex + my * ey + 0.1 * norm2(mx, my);
                        if (score > best + 1e-12) {
                            best = score;
                            dx = mx;
                            dy = my;
                        }
                    }
                }
            }
            qx = x + dx;
            qy = y + dy;
            vx = dx / h;
            vy = dy / h;
            q_inside = false;
        }
    }
    pn[2 * i] = qx;
    pn[2 * i + 1] = qy;
    vn[2 * i] = vx;
    vn[2 * i + 1] = vy;
    // Exit: the centre entered an exit cell. Checked every substep, but only when the agent changed cells
    // (its old cell is no exit, else it would have left), on its first walking substep, and for the stair
    // zone bit.
    if (!q_inside) locate(qx, qy, l, iy, ix);  // always inside: the move was clamped to walkable cells
    const std::size_t cell = flat(l, iy, ix);
    const bool look = last || first_walk || iy != iy0 || ix != ix0;
    const uint16_t info = look ? cell_info_[cell] : uint16_t(kWalkBit);
    const int32_t ex_id = static_cast<int32_t>(info >> 2) - 1;
    int16_t* pending = pending_.data();
    if (ex_id >= 0) {
        // (The state changes after the substep: until then the agent is a neighbour as at its start.)
        sc.evacuated.push_back(i);
        exit_index_[i] = ex_id;
        // (The end of the step's last substep is the step's end, time() after it, exactly: t + h may round
        // above it.)
        exit_time_[i] = last ? static_cast<double>(step_count_ + 1) * dt_ : t + h;
        pending[i] = -1;
        queue[i] = -1;
        stuck = 0;
        return;
    }

    // Stair requests and stuck detection once per step, after its last substep.
    if (!last) return;
    const double step = dt_;

    // Stair entry request: in the zone of a stair end whose way (for this field) goes over the stair, heading
    // to the end point, or standing in the end point's own cell (where the field has its minimum, so there is
    // no direction to head in).
    int32_t req = -1;
    if (info & kZoneBit) {
        const int f = field_[i];
        for (const int32_t k : stair_ends_[l]) {
            if (!via_stair_[f][k]) continue;
            const Stair& S = stairs_[k / 2];
            const double* P = S.end[k % 2];
            const double dxe = P[0] - qx, dye = P[1] - qy;
            const double d = norm2(dxe, dye);
            int ey2 = 0, ex2 = 0;
            locate(P[0], P[1], l, ey2, ex2);
            const bool own = ey2 == iy && ex2 == ix;
            if (!own && !has_dir) continue;
            if (!(own || d <= S.zone)) continue;
            if (!(own || d <= g_.cell_size || ex * dxe + ey * dye > 0)) continue;
            req = k;
            break;
        }
    }
    pending[i] = static_cast<int16_t>(req);
    if (req >= 0) {
        if (queue[i] < 0) queue[i] = static_cast<int32_t>(substep_count_);
        sc.stair.push_back(i);
    } else {
        queue[i] = -1;
    }

    // Stuck detection: the progress speed along the field's direction, averaged over stuck_window, stays
    // below stuck_speed for stuck_time (jittering in place counts as stuck); if the agent is then deadlocked
    // rather than queueing (see deadlocked), an unstick episode starts.
    if (!has_dir) {
        stuck = 0;
        ema = static_cast<float>(v0);
    } else {
        const double progress = ((qx - x) * e0x + (qy - y) * e0y) / h;
        ema += static_cast<float>(std::min(1.0, step / p_.stuck_window) * (progress - ema));
        if (stuck >= 0) {
            if (ema < p_.stuck_speed) {  // (the episodes-in-a-row count survives until progress resumes)
                stuck += static_cast<float>(step);
                int dead = 0;
                if (stuck >= p_.stuck_time) {
                    // The deadlock test looks for the nearest agent ahead within cut_: first among the
                    // neighbours within cut_i (a held agent's nb lists only those in contact: it looks within
                    // 3 r + max_radius_ first), then, if nobody of them is ahead, within cut_.
                    auto requery = [&](double reach) {
                        cut_now = reach;
                        cut2 = reach * reach;
                        nn = 0;
                        add_from_index(within_cut);
                        nb = sc.nb.data();
                    };
                    const double room_reach = std::min(cut_, 3.0 * r + max_radius_);
                    if (held || cut_now < room_reach) requery(room_reach);
                    dead = deadlocked(t, l, x, y, e0x, e0y, r, nb, nn, cut_now);
                    if (dead < 0) {
                        requery(cut_);
                        dead = deadlocked(t, l, x, y, e0x, e0y, r, nb, nn, cut_now);
                    }
                }
                if (stuck >= p_.stuck_time && dead == 0) {
                    stuck = static_cast<float>(p_.stuck_time - 0.5);  // queueing: look again in 0.5 s
                } else if (stuck >= p_.stuck_time) {
                    stuck = static_cast<float>(-p_.unstick_time);
                    uint32_t u = static_cast<uint32_t>(unstick_[i]);
                    u = (((u >> 16) + 1) << 16) | std::min<uint32_t>((u & 0xFFFFu) + 1, 0xFFFFu);
                    unstick_[i] = static_cast<int32_t>(u);
                }
            } else {  // progressing: the stuck time decays (jitter around a deadlock does not reset it)
                stuck = std::max(0.0f, static_cast<float>(stuck - step));
                if (stuck == 0)
                    unstick_[i] = static_cast<int32_t>(static_cast<uint32_t>(unstick_[i]) & 0xFFFF0000u);
            }
        } else {
            stuck += static_cast<float>(step);
            if (stuck >= 0) stuck = 0;
        }
    }
}

// Cache hints for an agent processed a little later: the raster cells around it (its navigation field's
// directions at the first substep of a step, and the cell flags every substep), which are spread over large
// arrays. Only a hint: results do not depend on it.
void CrowdSim::prefetch_agent(int64_t i, bool field) const {
    const int8_t st = state_[i];
    if ((st != kCrowdWalking && st != kCrowdWaiting) || g_.ny < 3) return;
    const int l = level_[i];
    const double u = (pos_[0][2 * i] - g_.origins[2 * l]) * inv_cell_;
    const double v = (pos_[0][2 * i + 1] - g_.origins[2 * l + 1]) * inv_cell_;
    const int ix = std::clamp(static_cast<int>(u), 0, g_.nx - 1);
    const int iy = std::clamp(static_cast<int>(v), 1, g_.ny - 2);
    const std::size_t c = flat(l, iy, ix);
    for (int d = -1; d <= 1; ++d) {
        const std::size_t cd = c + static_cast<std::ptrdiff_t>(d) * g_.nx;
        __builtin_prefetch(cell_info_.data() + cd);
        if (field && !fields_.empty()) __builtin_prefetch(fields_[field_[i]].data() + 2 * cd);
    }
}

template <CrowdModel M>
void CrowdSim::substep(double t, double h, int sub, bool last) {
    sync_evacuated();
    const int64_t n = n_;
    // (All of them: a team smaller than at the last substep, after set_num_threads or below
    // kParallelMinAgents, leaves the others' lists untouched, and they are all read below.)
    for (Scratch& sc : scratch_) {
        sc.evacuated.clear();
        sc.stair.clear();
    }
#pragma omp parallel if (n >= kParallelMinAgents)
    {
        Scratch& sc = scratch_[thread_num()];
        // In slot order, which reorder keeps close to the index order: neighbours, field cells and walls of
        // consecutive agents are close in memory. The order does not change results (each agent reads the
        // old state only).
        const int64_t blocks = (n + kBlock - 1) / kBlock;
#pragma omp for schedule(dynamic, 8)
        for (int64_t b = 0; b < blocks; ++b) {
            const int64_t i0 = b * kBlock, i1 = std::min(n, i0 + kBlock);
            for (int64_t i = i0; i < i1; ++i) {
                if ((sub == 0 || last) && i + kAhead < n) prefetch_agent(i + kAhead, sub == 0);
                prepare_agent(i, t, sub, sc.pre[i - i0]);
            }
            for (int64_t i = i0; i < i1; ++i) update_agent<M>(i, t, h, sub, last, sc.pre[i - i0], sc);
        }
    }
    int8_t* state = state_.data();
    stair_req_.clear();
    for (const Scratch& sc : scratch_) {
        for (const int64_t i : sc.evacuated) {
            state[i] = kCrowdEvacuated;
            evacuated_.push_back(i);
            left_floor_ = true;
        }
        stair_req_.insert(stair_req_.end(), sc.stair.begin(), sc.stair.end());
    }
    if (!stair_req_.empty()) stair_phase(last);
    std::swap(pos_[0], pos_[1]);
    std::swap(vel_[0], vel_[1]);
    ++substep_count_;
}

void CrowdSim::step(int64_t n) {
    if (n < 0) throw std::invalid_argument("n must be >= 0, got " + std::to_string(n));
    if (n == 0) return;
    ensure_ready();
    const double h = dt_ / nsub_;
    const int64_t every =
        std::max<int64_t>(1, std::llround(1.0 / dt_));  // re-sort the slots about once a second
    for (int64_t s = 0; s < n; ++s) {
        sync_evacuated();
        build_floor_index();
        if (reorder_pending_ || step_count_ % every == 0) {
            reorder();
            reorder_pending_ = false;
            lists_valid_ = false;  // (slot offsets; reorder also used their storage)
        }
        for (int k = 0; k < nsub_; ++k) {
            const double t = static_cast<double>(step_count_) * dt_ + k * h;
            fresh_ = lists_ && (!lists_valid_ || since_fresh_ >= social_every_);
            if (fresh_) {
                // The pool of long contact lists: as large as the last fresh substep asked for (and a
                // margin).
                if (pool_used_ > pool_.size()) pool_.resize(pool_used_ + pool_used_ / 4);
                pool_used_ = 0;
                // (Nobody has left the floors since the lists and the index were made, unless the index is
                // older: a fresh substep later in the step.)
                if (k == 0) left_floor_ = false;
                since_fresh_ = 0;
                lists_valid_ = true;  // (from now: agents coming off stairs in this substep join them)
            }
            if (model_ == CrowdModel::SocialForce) {
                substep<CrowdModel::SocialForce>(t, h, k, k == nsub_ - 1);
            } else {
                substep<CrowdModel::CollisionFreeSpeed>(t, h, k, k == nsub_ - 1);
            }
            ++since_fresh_;
        }
        ++step_count_;
    }
}

}  // namespace twin
