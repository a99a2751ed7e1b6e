// SegmentIndex2D: per-level BVHs over wall segments; nearest-wall and within-radius queries.
#include "twin/segment_index.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>

namespace twin {

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr int64_t kLeafSize = 4;
constexpr int kMaxDepth = 128;  // median splits halve the items, so depth <= log2(n) + 1 < 64

struct Closest {
    double d, cx, cy;
};

// Closest point of segment s = [ax, ay, bx, by] to (qx, qy), and its distance. The end points are returned
// exactly when the projection falls outside the segment; a zero-length segment is its first point.
inline Closest closest_on_segment(const double* s, double qx, double qy) {
    const double ax = s[0], ay = s[1], dx = s[2] - ax, dy = s[3] - ay;
    const double l2 = dx * dx + dy * dy;
    const double t = l2 > 0 ? ((qx - ax) * dx + (qy - ay) * dy) / l2 : 0.0;
    double cx, cy;
    if (t <= 0) {
        cx = ax, cy = ay;
    } else if (t >= 1) {
        cx = s[2], cy = s[3];
    } else {
        cx = ax + t * dx, cy = ay + t * dy;
    }
    const double ex = qx - cx, ey = qy - cy;
    return {std::sqrt(ex * ex + ey * ey), cx, cy};
}

inline double box_dist2(const SegmentIndex2D::Node& b, double qx, double qy) {
    const double gx = std::max(0.0, std::max(b.lo[0] - qx, qx - b.hi[0]));
    const double gy = std::max(0.0, std::max(b.lo[1] - qy, qy - b.hi[1]));
    return gx * gx + gy * gy;
}

void build_tree(const double* segs, std::vector<int64_t> items, SegmentIndex2D::Tree& tree) {
    tree.nodes.clear();
    tree.ids = std::move(items);
    const int64_t m = static_cast<int64_t>(tree.ids.size());
    if (m == 0) return;
    std::vector<double> cen(static_cast<size_t>(m) * 2);  // centroids by item position (permuted with ids)
    for (int64_t i = 0; i < m; ++i) {
        const double* s = segs + tree.ids[i] * 4;
        cen[2 * i] = 0.5 * (s[0] + s[2]);
        cen[2 * i + 1] = 0.5 * (s[1] + s[3]);
    }
    std::vector<std::pair<double, int64_t>> key(static_cast<size_t>(m));
    struct Job {
        int64_t node, first, count;
    };
    std::vector<Job> jobs{{0, 0, m}};
    tree.nodes.push_back({});
    while (!jobs.empty()) {
        const Job job = jobs.back();
        jobs.pop_back();
        SegmentIndex2D::Node& nd = tree.nodes[job.node];
        nd.lo[0] = nd.lo[1] = kInf;
        nd.hi[0] = nd.hi[1] = -kInf;
        double clo[2] = {kInf, kInf}, chi[2] = {-kInf, -kInf};
        for (int64_t i = job.first; i < job.first + job.count; ++i) {
            const double* s = segs + tree.ids[i] * 4;
            for (int a = 0; a < 2; ++a) {
                nd.lo[a] = std::min({nd.lo[a], s[a], s[a + 2]});
                nd.hi[a] = std::max({nd.hi[a], s[a], s[a + 2]});
                clo[a] = std::min(clo[a], cen[2 * i + a]);
                chi[a] = std::max(chi[a], cen[2 * i + a]);
            }
        }
        if (job.count <= kLeafSize) {
            nd.first = job.first;
            nd.count = job.count;
            continue;
        }
        // Median split along the wider centroid extent; ties ordered by segment id (deterministic).
        const int axis = (chi[0] - clo[0]) >= (chi[1] - clo[1]) ? 0 : 1;
        for (int64_t i = 0; i < job.count; ++i) {
            const int64_t p = job.first + i;
            key[i] = {cen[2 * p + axis], tree.ids[p]};
        }
        const int64_t half = job.count / 2;
        std::nth_element(key.begin(), key.begin() + half, key.begin() + job.count);
        // Rewrite the range in partitioned order (ids and centroids follow the keys).
        for (int64_t i = 0; i < job.count; ++i) {
            const int64_t p = job.first + i;
            tree.ids[p] = key[i].second;
            const double* s = segs + key[i].second * 4;
            cen[2 * p] = 0.5 * (s[0] + s[2]);
            cen[2 * p + 1] = 0.5 * (s[1] + s[3]);
        }
        const int64_t left = static_cast<int64_t>(tree.nodes.size());
        nd.first = left;
        nd.count = 0;
        tree.nodes.push_back({});
        tree.nodes.push_back({});
        jobs.push_back({left + 1, job.first + half, job.count - half});
        jobs.push_back({left, job.first, half});
    }
    tree.segs.resize(static_cast<size_t>(m) * 4);
    for (int64_t i = 0; i < m; ++i)
        for (int a = 0; a < 4; ++a) tree.segs[4 * i + a] = segs[tree.ids[i] * 4 + a];
}

struct Best {
    double d = kInf;
    int64_t id = std::numeric_limits<int64_t>::max();
    double cx = 0, cy = 0;
    const double* seg = nullptr;
};

// Branch and bound: nearer child first; a node is skipped only when its box is farther than the best so far
// (plus a rounding slack, so that an equally near segment with a lower id is still seen).
void nearest_in(const SegmentIndex2D::Tree& t, double qx, double qy, double slack, Best& best) {
    if (t.nodes.empty()) return;
    int64_t stack[kMaxDepth * 2];
    int sp = 0;
    stack[sp++] = 0;
    while (sp > 0) {
        const SegmentIndex2D::Node& nd = t.nodes[stack[--sp]];
        const double lim = best.d + slack;
        if (box_dist2(nd, qx, qy) > lim * lim) continue;
        if (nd.count > 0) {
            for (int64_t i = nd.first; i < nd.first + nd.count; ++i) {
                const double* s = t.segs.data() + 4 * i;
                const Closest c = closest_on_segment(s, qx, qy);
                const int64_t id = t.ids[i];
                if (c.d < best.d || (c.d == best.d && id < best.id)) best = {c.d, id, c.cx, c.cy, s};
            }
            continue;
        }
        const int64_t a = nd.first, b = nd.first + 1;
        const double da = box_dist2(t.nodes[a], qx, qy), db = box_dist2(t.nodes[b], qx, qy);
        if (da <= db) {
            stack[sp++] = b;
            stack[sp++] = a;
        } else {
            stack[sp++] = a;
            stack[sp++] = b;
        }
    }
}

template <typename Emit>
void within_in(const SegmentIndex2D::Tree& t, double qx, double qy, double r, double slack, Emit&& emit) {
    if (t.nodes.empty()) return;
    const double lim = r + slack;
    int64_t stack[kMaxDepth * 2];
    int sp = 0;
    stack[sp++] = 0;
    while (sp > 0) {
        const SegmentIndex2D::Node& nd = t.nodes[stack[--sp]];
        if (box_dist2(nd, qx, qy) > lim * lim) continue;
        if (nd.count > 0) {
            for (int64_t i = nd.first; i < nd.first + nd.count; ++i) {
                const Closest c = closest_on_segment(t.segs.data() + 4 * i, qx, qy);
                if (c.d <= r) emit(t.ids[i], c.d);
            }
            continue;
        }
        stack[sp++] = nd.first + 1;
        stack[sp++] = nd.first;
    }
}

}  // namespace

SegmentIndex2D::SegmentIndex2D(const double* segments, int64_t n, const int32_t* levels) : n_(n) {
    if (n < 0) throw std::invalid_argument("segments must have n >= 0 rows");
    for (int64_t i = 0; i < 4 * n; ++i) max_abs_ = std::max(max_abs_, std::fabs(segments[i]));
    std::vector<int64_t> all(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) all[i] = i;
    if (levels) {
        level_values_.assign(levels, levels + n);
        std::sort(level_values_.begin(), level_values_.end());
        level_values_.erase(std::unique(level_values_.begin(), level_values_.end()), level_values_.end());
    } else if (n > 0) {
        level_values_ = {0};
    }
    trees_.resize(1);
    build_tree(segments, all, trees_[0]);
    level_tree_.assign(level_values_.size(), 0);
    if (level_values_.size() > 1) {  // one tree per level besides the tree of all segments
        std::vector<std::vector<int64_t>> per(level_values_.size());
        for (int64_t i = 0; i < n; ++i) {
            const auto it = std::lower_bound(level_values_.begin(), level_values_.end(), levels[i]);
            per[static_cast<size_t>(it - level_values_.begin())].push_back(i);
        }
        trees_.resize(1 + level_values_.size());
        for (size_t l = 0; l < per.size(); ++l) {
            build_tree(segments, std::move(per[l]), trees_[1 + l]);
            level_tree_[l] = static_cast<int32_t>(1 + l);
        }
    }
}

const SegmentIndex2D::Tree* SegmentIndex2D::tree_for(const int32_t* levels, int64_t i) const {
    if (!levels) return &trees_[0];
    const auto it = std::lower_bound(level_values_.begin(), level_values_.end(), levels[i]);
    if (it == level_values_.end() || *it != levels[i]) return nullptr;
    return &trees_[level_tree_[static_cast<size_t>(it - level_values_.begin())]];
}

void SegmentIndex2D::nearest(const double* pts, int64_t k, const int32_t* levels, double max_distance,
                             double* distance, double* normal, int64_t* segment, double* point) const {
    if (!(max_distance >= 0))
        throw std::invalid_argument("max_distance must be >= 0 (inf allowed), got " +
                                    std::to_string(max_distance));
    const double nan = std::numeric_limits<double>::quiet_NaN();
#pragma omp parallel for schedule(dynamic, 256)
    for (int64_t i = 0; i < k; ++i) {
        const double qx = pts[2 * i], qy = pts[2 * i + 1];
        Best best;
        best.d = max_distance;  // with id = max: a segment at exactly max_distance is still accepted
        const Tree* t = tree_for(levels, i);
        if (t) {
            const double slack = 1e-12 * (max_abs_ + std::fabs(qx) + std::fabs(qy)) + 1e-300;
            nearest_in(*t, qx, qy, slack, best);
        }
        if (!t || !best.seg) {
            distance[i] = kInf;
            normal[2 * i] = normal[2 * i + 1] = 0;
            segment[i] = -1;
            point[2 * i] = point[2 * i + 1] = nan;
            continue;
        }
        distance[i] = best.d;
        segment[i] = best.id;
        point[2 * i] = best.cx;
        point[2 * i + 1] = best.cy;
        if (best.d > 0) {
            normal[2 * i] = (qx - best.cx) / best.d;
            normal[2 * i + 1] = (qy - best.cy) / best.d;
        } else {  // on the wall: its left-hand normal (zero-length wall: no direction)
            const double dx = best.seg[2] - best.seg[0], dy = best.seg[3] - best.seg[1];
            const double len = std::sqrt(dx * dx + dy * dy);
            normal[2 * i] = len > 0 ? -dy / len : 0.0;
            normal[2 * i + 1] = len > 0 ? dx / len : 0.0;
        }
    }
}

CsrNeighbors SegmentIndex2D::within(const double* pts, int64_t k, double radius,
                                    const int32_t* levels) const {
    if (!(radius >= 0) || !std::isfinite(radius))
        throw std::invalid_argument("radius must be a finite number >= 0, got " + std::to_string(radius));
    CsrNeighbors out;
    out.offsets.allocate(k + 1);
    int64_t* off = out.offsets.data.get();
    off[0] = 0;
    auto slack_of = [&](int64_t i) {
        return 1e-12 * (max_abs_ + radius + std::fabs(pts[2 * i]) + std::fabs(pts[2 * i + 1])) + 1e-300;
    };
#pragma omp parallel for schedule(dynamic, 256)
    for (int64_t i = 0; i < k; ++i) {
        int64_t m = 0;
        if (const Tree* t = tree_for(levels, i))
            within_in(*t, pts[2 * i], pts[2 * i + 1], radius, slack_of(i), [&](int64_t, double) { ++m; });
        off[i + 1] = m;
    }
    for (int64_t i = 0; i < k; ++i) off[i + 1] += off[i];
    out.indices.allocate(off[k]);
    out.distances.allocate(off[k]);
    int64_t* idx = out.indices.data.get();
    double* dist = out.distances.data.get();
#pragma omp parallel
    {
        std::vector<std::pair<int64_t, double>> buf;
#pragma omp for schedule(dynamic, 256)
        for (int64_t i = 0; i < k; ++i) {
            buf.clear();
            if (const Tree* t = tree_for(levels, i))
                within_in(*t, pts[2 * i], pts[2 * i + 1], radius, slack_of(i),
                          [&](int64_t id, double d) { buf.emplace_back(id, d); });
            std::sort(buf.begin(), buf.end());  // by segment id (ids are unique within a row)
            int64_t o = off[i];
            for (const auto& e : buf) {
                idx[o] = e.first;
                dist[o] = e.second;
                ++o;
            }
        }
    }
    return out;
}

}  // namespace twin
