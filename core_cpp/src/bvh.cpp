// Watertight ray/triangle tests need a*b - c*d to be evaluated the same way for both triangles sharing an
// edge; a fused multiply-add would break that antisymmetry, so contraction is off for this file.
#if defined(__clang__)
#pragma clang fp contract(off)
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

#include "twin/bvh.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstring>
#include <limits>
#include <memory>
#include <new>
#include <stdexcept>
#include <string>

#if defined(__linux__)
#include <sys/mman.h>
#endif

#if defined(__SSE2__)
#include <emmintrin.h>
#define TWIN_BVH_SSE 1
#endif

namespace twin {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr float kInfF = std::numeric_limits<float>::infinity();
constexpr int kBins = 32;               // SAH bins per axis
constexpr int kMaxLeaf = 8;             // largest leaf the SAH may choose
constexpr int kMaxDepth = 48;           // below this depth splits are object medians (bounds the stacks)
constexpr int kStackSize = 256;         // > 3 * (kMaxDepth + 31): pending children of a 4-wide traversal
constexpr double kTraversalCost = 1.0;  // cost of an interior node, in triangle tests
constexpr int32_t kTaskGrain = 4096;    // subtrees smaller than this are built by one task
constexpr double kBoxPad = 5e-7;        // per-query box padding, relative: 8 float ulps

// ---------------------------------------------------------------------------------------------------------
// Four floats, SSE where available.

#ifdef TWIN_BVH_SSE
using f4 = __m128;
inline f4 f4_load(const float* p) { return _mm_load_ps(p); }  // 16-byte aligned
inline f4 f4_loadu(const float* p) { return _mm_loadu_ps(p); }
inline f4 f4_set1(float x) { return _mm_set1_ps(x); }
// +, - and * on __m128 are GCC/Clang vector extensions (addps, subps, mulps).
inline f4 f4_min(f4 a, f4 b) { return _mm_min_ps(a, b); }
inline f4 f4_max(f4 a, f4 b) { return _mm_max_ps(a, b); }
inline int f4_le_mask(f4 a, f4 b) { return _mm_movemask_ps(_mm_cmple_ps(a, b)); }
inline void f4_store(float* p, f4 a) { _mm_storeu_ps(p, a); }
#else
struct f4 {
    float v[4];
};
inline f4 f4_load(const float* p) { return f4{{p[0], p[1], p[2], p[3]}}; }
inline f4 f4_loadu(const float* p) { return f4_load(p); }
inline f4 f4_set1(float x) { return f4{{x, x, x, x}}; }
#define TWIN_F4_OP(name, expr)                       \
    inline f4 name(f4 a, f4 b) {                     \
        f4 r;                                        \
        for (int i = 0; i < 4; ++i) r.v[i] = (expr); \
        return r;                                    \
    }
TWIN_F4_OP(operator+, a.v[i] + b.v[i])
TWIN_F4_OP(operator-, a.v[i] - b.v[i])
TWIN_F4_OP(operator*, a.v[i] * b.v[i])
TWIN_F4_OP(f4_min, a.v[i] < b.v[i] ? a.v[i] : b.v[i])
TWIN_F4_OP(f4_max, a.v[i] > b.v[i] ? a.v[i] : b.v[i])
#undef TWIN_F4_OP
inline int f4_le_mask(f4 a, f4 b) {
    int m = 0;
    for (int i = 0; i < 4; ++i) m |= (a.v[i] <= b.v[i]) << i;
    return m;
}
inline void f4_store(float* p, f4 a) { std::memcpy(p, a.v, sizeof(a.v)); }
#endif

inline int lowest_bit(int m) { return __builtin_ctz(static_cast<unsigned>(m)); }

// The next float above f (f not NaN; +inf stays).
inline float next_up(float f) {
    if (f == kInfF) return f;
    if (f == 0.0f) return std::numeric_limits<float>::denorm_min();
    uint32_t u;
    std::memcpy(&u, &f, sizeof(u));
    u += f > 0.0f ? 1u : ~0u;
    std::memcpy(&f, &u, sizeof(u));
    return f;
}

// The largest float <= x and the smallest float >= x (selects rather than branches: the comparison is a
// coin toss).
inline float round_down(double x) {
    const float f = static_cast<float>(x);
    const float g = -next_up(-f);
    return static_cast<double>(f) > x ? g : f;
}
inline float round_up(double x) {
    const float f = static_cast<float>(x);
    const float g = next_up(f);
    return static_cast<double>(f) < x ? g : f;
}

inline void prefetch(const void* p) { __builtin_prefetch(p, 0, 3); }

// ---------------------------------------------------------------------------------------------------------
// Binary SAH build

// Both the build's primitives and its nodes are 32 bytes: a float box (relative to the mesh centre, padded
// and rounded outward) with one 32-bit payload after lo and one after hi.
struct PrimRef {
    float lo[3];
    uint32_t id;  // triangle id
    float hi[3];
    uint32_t flags;  // 1: zero area, left out of the tree
};

struct BinNode {
    float lo[3];
    int32_t first;  // interior: left child (the right one is first + 1); leaf: first primitive
    float hi[3];
    int32_t count;  // 0: interior
};

#ifdef TWIN_BVH_SSE
inline f4 keep_xyz(f4 v) { return _mm_and_ps(v, _mm_castsi128_ps(_mm_setr_epi32(-1, -1, -1, 0))); }
#else
inline f4 keep_xyz(f4 v) {
    v.v[3] = 0.0f;
    return v;
}
#endif
// lo and hi of a 32-byte box as four floats each, the payload lanes zeroed
inline f4 load_lo(const void* p) { return keep_xyz(f4_loadu(static_cast<const float*>(p))); }
inline f4 load_hi(const void* p) { return keep_xyz(f4_loadu(static_cast<const float*>(p) + 4)); }

inline float half_area(f4 lo, f4 hi) {
    float e[4];
    f4_store(e, f4_max(hi - lo, f4_set1(0.0f)));  // an empty box (lo > hi) has no area
    return e[0] * e[1] + e[1] * e[2] + e[2] * e[0];
}

struct Box {
    f4 lo = f4_set1(kInfF);
    f4 hi = f4_set1(-kInfF);
    void grow(f4 l, f4 h) {
        lo = f4_min(lo, l);
        hi = f4_max(hi, h);
    }
    void grow(const Box& b) { grow(b.lo, b.hi); }
    float half_area() const { return twin::half_area(lo, hi); }
};

class Builder {
  public:
    Builder(PrimRef* prims, int32_t n, BinNode* nodes) : prims_(prims), n_(n), nodes_(nodes) {}

    void run() {
        Box root;
        for (int32_t i = 0; i < n_; ++i) root.grow(load_lo(prims_ + i), load_hi(prims_ + i));
        set_box(0, root);
#pragma omp parallel if (n_ > kTaskGrain)
        {
#pragma omp single
            build(0, 0, n_, 1);
        }
    }

    int32_t n_nodes() const { return next_.load(); }

  private:
    PrimRef* prims_;
    int32_t n_;
    BinNode* nodes_;
    std::atomic<int32_t> next_{1};

    void set_box(int32_t i, const Box& b) {
        float l[4], h[4];
        f4_store(l, b.lo);
        f4_store(h, b.hi);
        for (int a = 0; a < 3; ++a) {
            nodes_[i].lo[a] = l[a];
            nodes_[i].hi[a] = h[a];
        }
    }

    void make_leaf(int32_t node, int32_t begin, int32_t end) {
        nodes_[node].first = begin;
        nodes_[node].count = end - begin;
    }

    void build(int32_t node, int32_t begin, int32_t end, int depth) {
        const int32_t n = end - begin;
        if (n <= 1) return make_leaf(node, begin, end);
        Box cb;  // bounds of the doubled centroids lo + hi
        for (int32_t i = begin; i < end; ++i) {
            const f4 c = load_lo(prims_ + i) + load_hi(prims_ + i);
            cb.grow(c, c);
        }
        int32_t mid = -1;
        Box lbox, rbox;
        if (depth < kMaxDepth) {
            mid = sah_split(node, begin, end, cb, lbox, rbox);
            if (mid == 0) return make_leaf(node, begin, end);
        }
        if (mid < 0) {
            if (n <= kMaxLeaf) return make_leaf(node, begin, end);
            mid = median_split(begin, end, cb, lbox, rbox);
        }
        const int32_t left = next_.fetch_add(2);
        nodes_[node].first = left;
        nodes_[node].count = 0;
        set_box(left, lbox);
        set_box(left + 1, rbox);
        if (n > kTaskGrain) {
#pragma omp task default(shared) firstprivate(left, begin, mid, depth)
            build(left, begin, mid, depth + 1);
            build(left + 1, mid, end, depth + 1);
#pragma omp taskwait
        } else {
            build(left, begin, mid, depth + 1);
            build(left + 1, mid, end, depth + 1);
        }
    }

    // Returns the first index of the right half, 0 when a leaf is cheaper, -1 when no plane separates the
    // centroids. Fills the children's boxes.
    int32_t sah_split(int32_t node, int32_t begin, int32_t end, const Box& cb, Box& lbox, Box& rbox) {
        const int32_t n = end - begin;
        const int nb = std::min(kBins, std::max(4, static_cast<int>(n)));  // fewer bins for small nodes
        float clo[4], chi[4], scale[4] = {0, 0, 0, 0};
        f4_store(clo, cb.lo);
        f4_store(chi, cb.hi);
        bool active[3];
        for (int a = 0; a < 3; ++a) {
            const float ext = chi[a] - clo[a];
            active[a] = ext > 0.0f;
            scale[a] = active[a] ? nb * (1.0f - 1e-6f) / ext : 0.0f;
        }
        if (!active[0] && !active[1] && !active[2]) return -1;
        const f4 vlo = cb.lo, vscale = f4_loadu(scale), vzero = f4_set1(0.0f), vmax = f4_set1(float(nb - 1));
        auto bins_of = [&](f4 l, f4 h, int* b) {
            float f[4];
            f4_store(f, f4_min(f4_max((l + h - vlo) * vscale, vzero), vmax));
            for (int a = 0; a < 3; ++a) b[a] = static_cast<int>(f[a]);
        };
        Box bins[3][kBins];
        int32_t counts[3][kBins];
        for (int a = 0; a < 3; ++a)
            for (int b = 0; b < nb; ++b) counts[a][b] = 0;
        for (int32_t i = begin; i < end; ++i) {
            const f4 l = load_lo(prims_ + i), h = load_hi(prims_ + i);
            int b[3];
            bins_of(l, h, b);
            for (int a = 0; a < 3; ++a) {
                bins[a][b[a]].grow(l, h);
                ++counts[a][b[a]];
            }
        }
        float best_cost = kInfF;
        int best_axis = -1, best_bin = -1;
        for (int a = 0; a < 3; ++a) {
            if (!active[a]) continue;
            float right_cost[kBins];  // area * count of bins b..nb-1
            Box acc;
            int32_t cnt = 0;
            for (int b = nb - 1; b > 0; --b) {
                acc.grow(bins[a][b]);
                cnt += counts[a][b];
                right_cost[b] = cnt > 0 ? acc.half_area() * float(cnt) : -1.0f;
            }
            Box lacc;
            int32_t lcnt = 0;
            for (int b = 0; b < nb - 1; ++b) {
                lacc.grow(bins[a][b]);
                lcnt += counts[a][b];
                if (lcnt == 0 || right_cost[b + 1] < 0) continue;
                const float cost = lacc.half_area() * float(lcnt) + right_cost[b + 1];
                if (cost < best_cost) {
                    best_cost = cost;
                    best_axis = a;
                    best_bin = b;
                }
            }
        }
        if (best_axis < 0) return -1;
        const float area = std::max(half_area(load_lo(nodes_ + node), load_hi(nodes_ + node)), 1e-30f);
        const double split_cost = kTraversalCost + double(best_cost) / area;
        if (n <= kMaxLeaf && n <= split_cost) return 0;
        for (int b = 0; b < nb; ++b) (b <= best_bin ? lbox : rbox).grow(bins[best_axis][b]);
        PrimRef* m = std::partition(prims_ + begin, prims_ + end, [&](const PrimRef& r) {
            int b[3];
            bins_of(load_lo(&r), load_hi(&r), b);
            return b[best_axis] <= best_bin;
        });
        return static_cast<int32_t>(m - prims_);
    }

    int32_t median_split(int32_t begin, int32_t end, const Box& cb, Box& lbox, Box& rbox) {
        PrimRef* p = prims_;
        float clo[4], chi[4];
        f4_store(clo, cb.lo);
        f4_store(chi, cb.hi);
        int axis = 0;
        for (int a = 1; a < 3; ++a)
            if (chi[a] - clo[a] > chi[axis] - clo[axis]) axis = a;
        const int32_t mid = begin + (end - begin) / 2;
        std::nth_element(p + begin, p + mid, p + end, [axis](const PrimRef& x, const PrimRef& y) {
            const float cx = x.lo[axis] + x.hi[axis], cy = y.lo[axis] + y.hi[axis];
            return cx < cy || (cx == cy && x.id < y.id);
        });
        for (int32_t i = begin; i < mid; ++i) lbox.grow(load_lo(p + i), load_hi(p + i));
        for (int32_t i = mid; i < end; ++i) rbox.grow(load_lo(p + i), load_hi(p + i));
        return mid;
    }
};

// Collapse the binary tree into the 4-wide one: each 4-wide node takes a binary node's children and keeps
// opening its largest interior child until it has four.
class Collapser {
  public:
    Collapser(const BinNode* bin, Bvh4NodeVector& out) : bin_(bin), out_(out) {}

    void run() { collapse(0); }

  private:
    const BinNode* bin_;
    Bvh4NodeVector& out_;

    void collapse(int32_t b) {
        int32_t kids[4];
        int nk = 0;
        if (bin_[b].count > 0) {
            kids[nk++] = b;  // a root that is a leaf
        } else {
            kids[nk++] = bin_[b].first;
            kids[nk++] = bin_[b].first + 1;
            while (nk < 4) {
                int pick = -1;
                double best = -1;
                for (int i = 0; i < nk; ++i) {
                    if (bin_[kids[i]].count > 0) continue;
                    const double a = half_area(load_lo(bin_ + kids[i]), load_hi(bin_ + kids[i]));
                    if (a > best) {
                        best = a;
                        pick = i;
                    }
                }
                if (pick < 0) break;
                const int32_t opened = kids[pick];
                for (int i = nk; i > pick + 1; --i) kids[i] = kids[i - 1];  // keep left-to-right order
                kids[pick] = bin_[opened].first;
                kids[pick + 1] = bin_[opened].first + 1;
                ++nk;
            }
        }
        const std::size_t idx = out_.size();
        out_.emplace_back();
        for (int r = 0; r < 3; ++r) {
            for (int i = 0; i < 4; ++i) {
                out_[idx].box[r][i] = kInfF;
                out_[idx].box[3 + r][i] = -kInfF;
            }
        }
        for (int i = 0; i < 4; ++i) {
            out_[idx].ref[i].child = -1;
            out_[idx].ref[i].count = 0;
        }
        for (int i = 0; i < nk; ++i) {
            const BinNode& k = bin_[kids[i]];
            for (int r = 0; r < 3; ++r) {
                out_[idx].box[r][i] = k.lo[r];
                out_[idx].box[3 + r][i] = k.hi[r];
            }
            if (k.count > 0) {
                out_[idx].ref[i].child = k.first;
                out_[idx].ref[i].count = k.count;
            } else {
                const int32_t c = static_cast<int32_t>(out_.size());
                collapse(kids[i]);
                out_[idx].ref[i].child = c;  // out_ may have grown: index again
            }
        }
    }
};

// ---------------------------------------------------------------------------------------------------------
// Rays

struct Ray {
    double o[3];
    double d[3];   // the direction scaled by a power of two so that its largest component is in [0.5, 1)
    double scale;  // power of two: d = caller's direction * scale, caller's t = t along d * scale (exact)
    // Watertight test: kz is the dominant axis, (kx, ky) the other two (swapped to keep the winding).
    int kx, ky, kz;
    double sx, sy, sz;
    // Box test in float in the box frame (x - centre) * unit, where the ray parameter is t * unit:
    // t = (plane - origin) * inv, with the origin moved by the rounding bound so that the box seen is always
    // a little larger than the true one.
    // near_off/far_off: byte offsets of the near and far plane rows in a node's box (by the sign of d).
    f4 o_near[3], o_far[3], inv[3];
    std::ptrdiff_t near_off[3], far_off[3];
};

inline void setup_ray(Ray& r, const double* o, const double* d, const double* centre, double unit,
                      double extent) {
    const double m = std::max(std::max(std::fabs(d[0]), std::fabs(d[1])), std::fabs(d[2]));
    uint64_t bits;
    std::memcpy(&bits, &m, sizeof(bits));
    const int biased = static_cast<int>(bits >> 52);  // m > 0, so the sign bit is clear
    int e = biased - 1022;                            // m = f * 2^e with f in [0.5, 1)
    if (biased == 0) std::frexp(m, &e);               // subnormal
    // d = caller's direction * 2^-e, so t = caller's t * 2^e
    if (e <= 1022 && e >= -1022) {
        const uint64_t pow2 = static_cast<uint64_t>(1023 - e) << 52;
        std::memcpy(&r.scale, &pow2, sizeof(pow2));
    } else {
        r.scale = std::ldexp(1.0, -e);
    }
    for (int a = 0; a < 3; ++a) {
        r.o[a] = o[a];
        r.d[a] = d[a] * r.scale;
    }
    int kz = 0;
    if (std::fabs(r.d[1]) > std::fabs(r.d[kz])) kz = 1;
    if (std::fabs(r.d[2]) > std::fabs(r.d[kz])) kz = 2;
    int kx = (kz + 1) % 3, ky = (kx + 1) % 3;
    if (r.d[kz] < 0) std::swap(kx, ky);
    r.kx = kx;
    r.ky = ky;
    r.kz = kz;
    r.sx = r.d[kx] / r.d[kz];
    r.sy = r.d[ky] / r.d[kz];
    r.sz = 1.0 / r.d[kz];
    for (int a = 0; a < 3; ++a) {
        const double inv = 1.0 / r.d[a];  // |d| <= 1, so |inv| >= 1; a zero component gives inf
        // Beyond 1e30 the ray moves less than 1e-30 per unit t along this axis: the box test treats it
        // as not moving, which is conservative because boxes are padded far more than that.
        const float invf =
            std::fabs(inv) < 1e30 ? static_cast<float>(inv) : std::copysign(1e30f, float(r.d[a]));
        const bool neg = std::signbit(invf);
        const double rel = (o[a] - centre[a]) * unit;
        // origin moved forward by >= delta for the near planes and back for the far planes; the extra half
        // delta covers the rounding to float (at most 2^-25 relative, far below kBoxPad / 2)
        const double shift = std::copysign(1.5 * kBoxPad * (std::fabs(rel) + extent), double(invf));
        const float on = static_cast<float>(rel + shift);
        const float of = static_cast<float>(rel - shift);
        r.o_near[a] = f4_set1(on);
        r.o_far[a] = f4_set1(of);
        r.inv[a] = f4_set1(invf);
        r.near_off[a] = static_cast<std::ptrdiff_t>((neg ? 3 + a : a) * sizeof(f4));
        r.far_off[a] = static_cast<std::ptrdiff_t>((neg ? a : 3 + a) * sizeof(f4));
    }
}

// Entry (tn) and exit (tf) distances of the ray into the node's four boxes, clipped to [tmin, tmax].
inline void box_slabs(const Bvh4Node& nd, const Ray& r, f4 tmin, f4 tmax, f4& tn, f4& tf) {
    const char* box = reinterpret_cast<const char*>(nd.box);
    tn = tmin;
    tf = tmax;
    for (int a = 0; a < 3; ++a) {
        const f4 near = f4_load(reinterpret_cast<const float*>(box + r.near_off[a]));
        const f4 far = f4_load(reinterpret_cast<const float*>(box + r.far_off[a]));
        tn = f4_max(tn, (near - r.o_near[a]) * r.inv[a]);
        tf = f4_min(tf, (far - r.o_far[a]) * r.inv[a]);
    }
}

// The mask of the node's boxes the ray meets within [tmin, tmax], and their entry distances.
inline int box_hits(const Bvh4Node& nd, const Ray& r, f4 tmin, f4 tmax, f4& tnear) {
    f4 tf;
    box_slabs(nd, r, tmin, tmax, tnear, tf);
    return f4_le_mask(tnear, tf);
}
inline int box_hits(const Bvh4Node& nd, const Ray& r, f4 tmin, f4 tmax) {
    f4 tn;
    return box_hits(nd, r, tmin, tmax, tn);
}

// Watertight ray/triangle test (float64). Returns the hit distance along r.d, or NaN when the ray misses
// the triangle or lies in its plane. Written without early exits: whether a ray hits is unpredictable.
inline double intersect(const double* v, const Ray& r) {
    const int kx = r.kx, ky = r.ky, kz = r.kz;
    const double az = v[kz] - r.o[kz], bz = v[3 + kz] - r.o[kz], cz = v[6 + kz] - r.o[kz];
    const double Ax = (v[kx] - r.o[kx]) - r.sx * az, Ay = (v[ky] - r.o[ky]) - r.sy * az;
    const double Bx = (v[3 + kx] - r.o[kx]) - r.sx * bz, By = (v[3 + ky] - r.o[ky]) - r.sy * bz;
    const double Cx = (v[6 + kx] - r.o[kx]) - r.sx * cz, Cy = (v[6 + ky] - r.o[ky]) - r.sy * cz;
    const double U = Cx * By - Cy * Bx;
    const double V = Ax * Cy - Ay * Cx;
    const double W = Bx * Ay - By * Ax;
    const bool some_neg = (U < 0) | (V < 0) | (W < 0);
    const bool some_pos = (U > 0) | (V > 0) | (W > 0);
    const double det = U + V + W;
    const double T = U * (r.sz * az) + V * (r.sz * bz) + W * (r.sz * cz);
    const bool inside = !(some_neg & some_pos) & (det != 0);
    return inside ? T / det : std::numeric_limits<double>::quiet_NaN();
}

// ---------------------------------------------------------------------------------------------------------
// Float32 filter in front of the watertight test, for shadow rays.
//
// Triangles are also stored in float, in box units relative to the mesh centre, as the rows x, y, z of
// their three vertices (36 bytes instead of 72): a shadow ray's leaf then costs half the memory traffic
// (the leaf loads were the largest stall of line-of-sight queries on a 1M-triangle mesh). The filter
// evaluates the watertight test's edge functions U, V, W -- the three at once, one per SIMD lane -- and,
// when they agree, its t = T / det, together with bounds on their distance to the float64 test's values. It
// answers "miss" when two edge functions have clearly opposite signs, "hit" when all three clearly share a
// sign and t is clearly in range, "miss" when t is clearly out of range, and "unsure" otherwise (a ray
// within rounding distance of an edge, a vertex or a range end, a triangle seen edge-on); then the float64
// test decides. Every answer is thus the float64 test's own, and that test's watertightness is kept.
//
// Error bound. Let u = 2^-24 and P = mesh extent + largest |origin component| (box units): no coordinate
// difference exceeds P. Stored vertices and the float origin are within 1.01 u P of the exact values. A
// projected coordinate Ax = (x - ox) - sx (z - oz) (|sx|, |sy| <= 1: z is the dominant axis) is then
// within 8.2 u P of its value in exact arithmetic with float64's sx, and float64's own Ax within 3 * 2^-53 P
// of that; likewise Za = sz * az (|sz| <= 2). We use e = 16 u P for both. With M the largest |projected
// coordinate| of the triangle, an edge function U = Cx By - Cy Bx is within
// e (|Cx| + |By| + |Cy| + |Bx| + 2e) + 2.01 u (|Cx By| + |Cy Bx|) <= e (4M + 2e) + 6u M^2 = d of float64's;
// det = U + V + W within dd = 3d + 4u |det|, T = U Za + V Zb + W Zc within
// dT = 3 d Z + (|det| + 3d) e + 5u |det| Z (Z the largest |Za|; when U, V, W share a sign their absolute
// values add up to |det|). The coefficients are about twice the derived ones, which covers the rounding of
// the bounds and float64's own error; a floor of 2^-90 covers underflow. The range test below keeps margins
// of 8u for its own float rounding.
constexpr float kFilterU = 1.0f / 16777216.0f;             // 2^-24
constexpr float kFilterFloor = 8.0779356e-28f;             // 2^-90
constexpr double kFilterOriginMax = 1073741824.0;          // 2^30 box units: farther origins skip the filter
constexpr double kFilterTMin = 1e-30, kFilterTMax = 1e30;  // box-unit t range the float range test handles

enum FilterAnswer { kFilterMiss = 0, kFilterHit = 1, kFilterUnsure = 2 };

struct FilterRay {
#ifdef TWIN_BVH_SSE
    __m128 ox, oy, oz;  // origin components along kx, ky, kz (box units relative to the centre), broadcast
    __m128 sx, sy, sz;
#endif
    int row_x, row_y, row_z;  // 3 * kx, 3 * ky, 3 * kz: offsets of the rows in a stored triangle
    float e;                  // error bound of a projected coordinate or of sz * az, box units
    float tlo_up, thi_dn;     // accepted t range in box units, rounded inward to float (tlo_up may be 0)
    bool on;                  // false: use the float64 test alone
};

inline void setup_filter(FilterRay& f, const Ray& r, const double* centre, double unit, double extent,
                         double tlo, double thi) {
    double rel[3], omax = 0;
    for (int a = 0; a < 3; ++a) {
        rel[a] = (r.o[a] - centre[a]) * unit;
        omax = std::max(omax, std::fabs(rel[a]));
    }
    f.row_x = 3 * r.kx;
    f.row_y = 3 * r.ky;
    f.row_z = 3 * r.kz;
    f.e = round_up(16.0 * kFilterU * (extent * (1 + 1e-12) + omax));
    const double tl = tlo * unit, th = thi * unit;  // t in box units
    f.tlo_up = round_up(tl);
    f.thi_dn = round_down(th);
#ifdef TWIN_BVH_SSE
    f.ox = _mm_set1_ps(static_cast<float>(rel[r.kx]));
    f.oy = _mm_set1_ps(static_cast<float>(rel[r.ky]));
    f.oz = _mm_set1_ps(static_cast<float>(rel[r.kz]));
    f.sx = _mm_set1_ps(static_cast<float>(r.sx));
    f.sy = _mm_set1_ps(static_cast<float>(r.sy));
    f.sz = _mm_set1_ps(static_cast<float>(r.sz));
    // tl, th exact (no under- or overflow); unit bounded so that box-unit t of float64 hits stay normal
    f.on = omax <= kFilterOriginMax && (tlo == 0 || tl >= kFilterTMin) && th <= kFilterTMax && th >= tl &&
           unit <= 0x1p600;
#else
    f.on = false;  // the filter needs SSE; float64 alone elsewhere
#endif
}

#ifdef TWIN_BVH_SSE
inline float hmax3(__m128 a) {  // largest of lanes 0..2 (lane 3 is zero or smaller)
    const __m128 m = _mm_max_ps(a, _mm_shuffle_ps(a, a, _MM_SHUFFLE(2, 3, 0, 1)));
    return _mm_cvtss_f32(_mm_max_ss(m, _mm_shuffle_ps(m, m, _MM_SHUFFLE(1, 0, 3, 2))));
}

// t = T / det of a triangle that float64 finds the ray inside, given tn = T * sign(det) within dT and
// ad = |det| within dd: whether it is surely in [tlo, thi] (1), surely outside (0) or unsure (2).
inline int filter_range(float tn, float dT, float ad, float dd, const FilterRay& f) {
    const float u8 = 8.0f * kFilterU;
    // numerator and denominator bounds, widened by the rounding of these sums
    const float lo_n = tn - (dT + u8 * std::fabs(tn)), hi_n = tn + (dT + u8 * std::fabs(tn));
    const float lo_d = ad - (dd + u8 * ad), hi_d = ad + (dd + u8 * ad);
    // t in [tlo, thi] if lo_n >= tlo hi_d and hi_n <= thi lo_d (products rounded: 8u margins)
    const float p_lo = f.tlo_up * hi_d, p_hi = f.thi_dn * lo_d;
    const bool in = (lo_n >= p_lo + u8 * p_lo) & (hi_n <= p_hi - u8 * p_hi);
    // surely out: t < tlo by a relative 2^-20 (so float64's rounded quotient stays below tlo; t < 0
    // surely below 0 when tlo is 0), or t > thi likewise
    const float q_lo = f.tlo_up * lo_d, q_hi = f.thi_dn * hi_d;
    const bool below = hi_n < (q_lo - u8 * q_lo) * (1.0f - 0x1p-20f) - kFilterFloor;
    const bool above = lo_n > (q_hi + u8 * q_hi) * (1.0f + 0x1p-20f) + kFilterFloor;
    const bool sure = lo_d > 0;
    return (sure & in) ? kFilterHit : ((sure & (below | above)) ? kFilterMiss : kFilterUnsure);
}

// The filter for one stored triangle (9 floats: rows x, y, z of the vertices a, b, c; the array is padded
// so that reading one float past a triangle is safe).
inline int filter_test(const float* v, const FilterRay& f) {
    const __m128 keep = _mm_castsi128_ps(_mm_setr_epi32(-1, -1, -1, 0));
    // lanes a, b, c of the projected coordinates, as in intersect()
    const __m128 z = _mm_loadu_ps(v + f.row_z) - f.oz;
    const __m128 x = _mm_and_ps((_mm_loadu_ps(v + f.row_x) - f.ox) - f.sx * z, keep);
    const __m128 y = _mm_and_ps((_mm_loadu_ps(v + f.row_y) - f.oy) - f.sy * z, keep);
    // lanes U = Cx By - Cy Bx, V = Ax Cy - Ay Cx, W = Bx Ay - By Ax, and 0
    const __m128 x1 = _mm_shuffle_ps(x, x, _MM_SHUFFLE(3, 1, 0, 2));  // Cx Ax Bx
    const __m128 y2 = _mm_shuffle_ps(y, y, _MM_SHUFFLE(3, 0, 2, 1));  // By Cy Ay
    const __m128 y1 = _mm_shuffle_ps(y, y, _MM_SHUFFLE(3, 1, 0, 2));  // Cy Ay By
    const __m128 x2 = _mm_shuffle_ps(x, x, _MM_SHUFFLE(3, 0, 2, 1));  // Bx Cx Ax
    const __m128 uvw = x1 * y2 - y1 * x2;
    const __m128 abs_mask = _mm_castsi128_ps(_mm_set1_epi32(0x7fffffff));
    const float M = hmax3(_mm_max_ps(_mm_and_ps(x, abs_mask), _mm_and_ps(y, abs_mask)));
    const float e = f.e;
    const float d = e * (4.0f * M + 2.0f * e) + 6.0f * kFilterU * M * M + kFilterFloor;
    const __m128 vd = _mm_set1_ps(d);
    const int pos = _mm_movemask_ps(_mm_cmpgt_ps(uvw, vd)) & 7;
    const int neg = _mm_movemask_ps(_mm_cmplt_ps(uvw, _mm_sub_ps(_mm_setzero_ps(), vd))) & 7;
    // If all three share a sign, so does float64's det: bound t = T / det. Computed whatever the signs
    // (no branches: whether a ray hits is unpredictable) and used only then.
    const __m128 zz = _mm_and_ps(f.sz * z, keep);  // Za Zb Zc
    const float Z = hmax3(_mm_and_ps(zz, abs_mask));
    float w[4], t[4];
    _mm_storeu_ps(w, uvw);
    _mm_storeu_ps(t, uvw * zz);
    const float det = (w[0] + w[1]) + w[2];
    const float T = (t[0] + t[1]) + t[2];
    const float ad = std::fabs(det);
    const float dd = 3.0f * d + 4.0f * kFilterU * ad + kFilterFloor;
    const float dT = 3.0f * d * Z + (ad + 3.0f * d) * e + 5.0f * kFilterU * ad * Z + kFilterFloor;
    const int range = filter_range(pos == 7 ? T : -T, dT, ad, dd, f);
    const bool apart = (pos != 0) & (neg != 0);  // two clearly opposite signs
    const bool inside = (pos == 7) | (neg == 7);
    return apart ? kFilterMiss : (inside ? range : kFilterUnsure);
}
#else
inline int filter_test(const float*, const FilterRay&) { return kFilterUnsure; }
#endif

inline double dot3(const double* a, const double* b) { return a[0] * b[0] + a[1] * b[1] + a[2] * b[2]; }

inline void triangle_normal(const double* v, double* n) {
    const double e1[3] = {v[3] - v[0], v[4] - v[1], v[5] - v[2]};
    const double e2[3] = {v[6] - v[0], v[7] - v[1], v[8] - v[2]};
    n[0] = e1[1] * e2[2] - e1[2] * e2[1];
    n[1] = e1[2] * e2[0] - e1[0] * e2[2];
    n[2] = e1[0] * e2[1] - e1[1] * e2[0];
    // scale first so that squaring neither underflows nor overflows (n is nonzero for a kept triangle)
    const double m = std::max(std::max(std::fabs(n[0]), std::fabs(n[1])), std::fabs(n[2]));
    for (int a = 0; a < 3; ++a) n[a] /= m;
    const double len = std::sqrt(dot3(n, n));
    for (int a = 0; a < 3; ++a) n[a] /= len;
}

struct StackEntry {
    int32_t child;
    int32_t count;  // 0: interior node
    float t;        // entry distance (rays) or squared box distance (closest points)
};

// Orders the hit children of a node by distance (insertion sort of at most four) and pushes all but the
// nearest, farthest first; returns the nearest in `next`.
inline void push_sorted(const Bvh4Node& nd, int mask, const float* dist, StackEntry* stack, int& sp,
                        StackEntry& next) {
    const int i0 = lowest_bit(mask);
    mask &= mask - 1;
    if (mask == 0) {  // one child: the common case
        next = StackEntry{nd.ref[i0].child, nd.ref[i0].count, dist[i0]};
        return;
    }
    const int i1 = lowest_bit(mask);
    mask &= mask - 1;
    if (mask == 0) {  // two children
        const bool swap = dist[i1] < dist[i0];
        const int near = swap ? i1 : i0, far = swap ? i0 : i1;
        stack[sp++] = StackEntry{nd.ref[far].child, nd.ref[far].count, dist[far]};
        next = StackEntry{nd.ref[near].child, nd.ref[near].count, dist[near]};
        return;
    }
    int idx[4] = {i0, i1, 0, 0};
    int cnt = 2;
    if (dist[i1] < dist[i0]) std::swap(idx[0], idx[1]);
    while (mask) {
        const int i = lowest_bit(mask);
        mask &= mask - 1;
        int j = cnt++;
        while (j > 0 && dist[idx[j - 1]] > dist[i]) {
            idx[j] = idx[j - 1];
            --j;
        }
        idx[j] = i;
    }
    for (int j = cnt - 1; j > 0; --j)
        stack[sp++] = StackEntry{nd.ref[idx[j]].child, nd.ref[idx[j]].count, dist[idx[j]]};
    next = StackEntry{nd.ref[idx[0]].child, nd.ref[idx[0]].count, dist[idx[0]]};
}

// ---------------------------------------------------------------------------------------------------------
// Closest point on a triangle (Voronoi regions of vertices, edges and face).

inline void closest_on_segment(const double* p, const double* a, const double* b, double* q) {
    const double ab[3] = {b[0] - a[0], b[1] - a[1], b[2] - a[2]};
    const double ap[3] = {p[0] - a[0], p[1] - a[1], p[2] - a[2]};
    const double len2 = dot3(ab, ab);
    double s = len2 > 0 ? dot3(ap, ab) / len2 : 0.0;
    s = std::min(1.0, std::max(0.0, s));
    for (int k = 0; k < 3; ++k) q[k] = a[k] + s * ab[k];
}

inline double dist2(const double* p, const double* q) {
    const double d[3] = {p[0] - q[0], p[1] - q[1], p[2] - q[2]};
    return dot3(d, d);
}

inline void closest_on_triangle(const double* p, const double* v, double* q) {
    const double* a = v;
    const double* b = v + 3;
    const double* c = v + 6;
    const double ab[3] = {b[0] - a[0], b[1] - a[1], b[2] - a[2]};
    const double ac[3] = {c[0] - a[0], c[1] - a[1], c[2] - a[2]};
    const double ap[3] = {p[0] - a[0], p[1] - a[1], p[2] - a[2]};
    const double d1 = dot3(ab, ap), d2 = dot3(ac, ap);
    if (d1 <= 0 && d2 <= 0) {
        std::memcpy(q, a, 3 * sizeof(double));
        return;
    }
    const double bp[3] = {p[0] - b[0], p[1] - b[1], p[2] - b[2]};
    const double d3 = dot3(ab, bp), d4 = dot3(ac, bp);
    if (d3 >= 0 && d4 <= d3) {
        std::memcpy(q, b, 3 * sizeof(double));
        return;
    }
    const double cp[3] = {p[0] - c[0], p[1] - c[1], p[2] - c[2]};
    const double d5 = dot3(ab, cp), d6 = dot3(ac, cp);
    if (d6 >= 0 && d5 <= d6) {
        std::memcpy(q, c, 3 * sizeof(double));
        return;
    }
    const double vc = d1 * d4 - d3 * d2;
    if (vc <= 0 && d1 >= 0 && d3 <= 0) {  // edge ab
        const double s = d1 / (d1 - d3);
        for (int k = 0; k < 3; ++k) q[k] = a[k] + s * ab[k];
        return;
    }
    const double vb = d5 * d2 - d1 * d6;
    if (vb <= 0 && d2 >= 0 && d6 <= 0) {  // edge ac
        const double s = d2 / (d2 - d6);
        for (int k = 0; k < 3; ++k) q[k] = a[k] + s * ac[k];
        return;
    }
    const double va = d3 * d6 - d5 * d4;
    if (va <= 0 && d4 - d3 >= 0 && d5 - d6 >= 0) {  // edge bc
        const double s = (d4 - d3) / ((d4 - d3) + (d5 - d6));
        for (int k = 0; k < 3; ++k) q[k] = b[k] + s * (c[k] - b[k]);
        return;
    }
    const double denom = va + vb + vc;
    if (!(denom > 0)) {  // a sliver the region tests cannot resolve: take the nearest edge point
        double best[3], cand[3];
        closest_on_segment(p, a, b, best);
        double bd = dist2(p, best);
        closest_on_segment(p, a, c, cand);
        if (dist2(p, cand) < bd) {
            bd = dist2(p, cand);
            std::memcpy(best, cand, sizeof(best));
        }
        closest_on_segment(p, b, c, cand);
        if (dist2(p, cand) < bd) std::memcpy(best, cand, sizeof(best));
        std::memcpy(q, best, sizeof(best));
        return;
    }
    const double s = vb / denom, t = vc / denom;
    for (int k = 0; k < 3; ++k) q[k] = a[k] + s * ab[k] + t * ac[k];
}

}  // namespace

// ---------------------------------------------------------------------------------------------------------

void* huge_page_alloc(std::size_t bytes) {
    constexpr std::size_t kHuge = std::size_t(2) << 20;
    if (bytes < kHuge) {
        void* p = ::operator new(bytes, std::align_val_t(64));
        return p;
    }
    const std::size_t rounded = (bytes + kHuge - 1) / kHuge * kHuge;
    void* p = ::operator new(rounded, std::align_val_t(kHuge));
#if defined(__linux__) && defined(MADV_HUGEPAGE)
    madvise(p, rounded, MADV_HUGEPAGE);  // advice only: failure leaves ordinary pages
#endif
    return p;
}

void huge_page_free(void* p, std::size_t bytes) noexcept {
    constexpr std::size_t kHuge = std::size_t(2) << 20;
    ::operator delete(p, std::align_val_t(bytes < kHuge ? 64 : kHuge));
}

TriangleBVH::TriangleBVH(const double* vertices, std::size_t n_vertices, const int64_t* triangles,
                         std::size_t n_triangles)
    : n_vertices_(n_vertices), n_triangles_(n_triangles) {
    if (n_triangles > static_cast<std::size_t>(std::numeric_limits<int32_t>::max())) {
        throw std::invalid_argument("triangles: at most 2^31 - 1 triangles are supported, got " +
                                    std::to_string(n_triangles));
    }
    for (std::size_t i = 0; i < 3 * n_triangles; ++i) {
        const int64_t k = triangles[i];
        if (k < 0 || static_cast<uint64_t>(k) >= n_vertices) {
            throw std::invalid_argument("triangles[" + std::to_string(i / 3) + ", " + std::to_string(i % 3) +
                                        "] = " + std::to_string(k) + " is out of range for " +
                                        std::to_string(n_vertices) + " vertices");
        }
    }
    for (int a = 0; a < 3; ++a) {
        bounds_[a] = kInf;
        bounds_[3 + a] = -kInf;
    }
    for (std::size_t i = 0; i < 3 * n_triangles; ++i) {
        const double* v = vertices + 3 * triangles[i];
        for (int a = 0; a < 3; ++a) {
            bounds_[a] = std::min(bounds_[a], v[a]);
            bounds_[3 + a] = std::max(bounds_[3 + a], v[a]);
        }
    }
    build(vertices, triangles);
}

void TriangleBVH::build(const double* vertices, const int64_t* triangles) {
    const auto start = std::chrono::steady_clock::now();
    nodes_.clear();
    tri_v_.clear();
    tri_f_.clear();
    tri_id_.clear();
    double extent = 0, cmax = 0;
    if (n_triangles_ > 0) {
        for (int a = 0; a < 3; ++a) {
            centre_[a] = 0.5 * (bounds_[a] + bounds_[3 + a]);
            extent = std::max(extent, 0.5 * (bounds_[3 + a] - bounds_[a]));
            cmax = std::max(cmax, std::fabs(centre_[a]));
        }
    }
    int unit_exp = 0;
    if (extent > 0) std::frexp(extent, &unit_exp);  // extent <= 2^unit_exp
    unit_ = std::ldexp(1.0, -unit_exp);
    extent_ = extent * unit_;
    // Padding of every triangle box: covers the rounding of `coordinate - centre`, far below any feature.
    const double pad = 1e-7 * extent + 1e-14 * cmax;

    const int64_t m = static_cast<int64_t>(n_triangles_);
    std::vector<PrimRef, HugePageAllocator<PrimRef>> prims(m);
#pragma omp parallel for schedule(static) if (m > 65536)
    for (int64_t i = 0; i < m; ++i) {
        const double* a = vertices + 3 * triangles[3 * i];
        const double* b = vertices + 3 * triangles[3 * i + 1];
        const double* c = vertices + 3 * triangles[3 * i + 2];
        const double e1[3] = {b[0] - a[0], b[1] - a[1], b[2] - a[2]};
        const double e2[3] = {c[0] - a[0], c[1] - a[1], c[2] - a[2]};
        const double n0 = e1[1] * e2[2] - e1[2] * e2[1];
        const double n1 = e1[2] * e2[0] - e1[0] * e2[2];
        const double n2 = e1[0] * e2[1] - e1[1] * e2[0];
        PrimRef& r = prims[i];
        r.id = static_cast<uint32_t>(i);
        r.flags = (n0 != 0 || n1 != 0 || n2 != 0) ? 0 : 1;
        for (int k = 0; k < 3; ++k) {
            r.lo[k] = round_down((std::min(std::min(a[k], b[k]), c[k]) - centre_[k] - pad) * unit_);
            r.hi[k] = round_up((std::max(std::max(a[k], b[k]), c[k]) - centre_[k] + pad) * unit_);
        }
    }
    prims.erase(std::remove_if(prims.begin(), prims.end(), [](const PrimRef& r) { return r.flags != 0; }),
                prims.end());
    const std::size_t np = prims.size();
    if (np > 0) {
        const std::size_t bin_bytes = 2 * np * sizeof(BinNode);
        auto release = [bin_bytes](BinNode* p) { huge_page_free(p, bin_bytes); };
        std::unique_ptr<BinNode, decltype(release)> bin(static_cast<BinNode*>(huge_page_alloc(bin_bytes)),
                                                        release);
        Builder builder(prims.data(), static_cast<int32_t>(np), bin.get());
        builder.run();
        stats_.n_binary_nodes = static_cast<std::size_t>(builder.n_nodes());
        nodes_.reserve(np / 2 + 1);
        Collapser collapser(bin.get(), nodes_);
        collapser.run();
        nodes_.shrink_to_fit();
        tri_v_.resize(9 * np);
#ifdef TWIN_BVH_SSE
        tri_f_.assign(9 * np + 4, 0.0f);  // padded: the filter reads one float past a triangle
#endif
        tri_id_.resize(np);
        const int64_t npi = static_cast<int64_t>(np);
#pragma omp parallel for schedule(static) if (npi > 65536)
        for (int64_t i = 0; i < npi; ++i) {
            const int64_t id = prims[i].id;
            tri_id_[i] = id;
            for (int k = 0; k < 3; ++k) {
                for (int a = 0; a < 3; ++a) {
                    const double x = vertices[3 * triangles[3 * id + k] + a];
                    tri_v_[9 * i + 3 * k + a] = x;
#ifdef TWIN_BVH_SSE
                    tri_f_[9 * i + 3 * a + k] = static_cast<float>((x - centre_[a]) * unit_);  // rows
#endif
                }
            }
        }
        stats_.n_nodes = nodes_.size();
        stats_.n_leaves = 0;
        for (const Bvh4Node& nd : nodes_)
            for (int i = 0; i < 4; ++i) stats_.n_leaves += nd.ref[i].count > 0 ? 1 : 0;
        // depth: longest chain of interior children
        std::vector<int> depth(nodes_.size(), 1);
        int deepest = 1;
        for (std::size_t i = 0; i < nodes_.size(); ++i) {  // children always come after their parent
            for (int k = 0; k < 4; ++k) {
                if (nodes_[i].ref[k].count == 0 && nodes_[i].ref[k].child >= 0) {
                    depth[nodes_[i].ref[k].child] = depth[i] + 1;
                    deepest = std::max(deepest, depth[i] + 1);
                }
            }
        }
        stats_.depth = deepest;
    }
    stats_.build_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

namespace {

// Traversal of many rays at once on one thread: each ray advances one node or leaf at a time, in turn, after
// prefetching what it needs next, so that the cache misses of several rays overlap instead of adding up.
// Every ray's result depends on that ray alone (first hit: smallest t, then lowest triangle id).
constexpr int kInterleave = 16;  // rays in flight per thread (8 hides too little of a DRAM miss)
constexpr int64_t kChunk = 256;  // rays per scheduling unit

// A first-hit ray: children are visited nearest first and pruned by the best hit so far.
struct RayState {
    Ray r;
    f4 vtmin, vtmax;  // box test range: tmin, and the best hit so far (or tmax), rounded outward
    float limit;      // vtmax's value: pending children farther than this are dropped
    double tlo, thi;  // accepted hit range along r.d
    double best_t;
    int64_t best_k;   // leaf-order index of the best hit, -1 if none
    int64_t best_id;  // its triangle id
    int64_t index;    // which ray (-1: slot free)
    StackEntry cur;
    int sp;
    StackEntry stack[kStackSize];
};

// A shadow ray (any hit): the box range never shrinks, so pending children need no distance and no order.
// Its stack holds one entry per node with children left to visit: the node and the mask of those children
// (lowest first), so a node's visit costs one store whatever its number of hit children.
struct PendingNode {
    int32_t node;
    int32_t mask;  // nonzero
};
// at most one entry per level of the 4-wide tree, which is no deeper than the binary one: kMaxDepth SAH
// levels, then object medians down to leaves of at most kMaxLeaf (< 31 more levels for < 2^31 triangles)
constexpr int kPathSize = kMaxDepth + 48;

struct ShadowState {
    Ray r;
    FilterRay f;
    f4 vtmin, vtmax;  // box test range [tmin, tmax], rounded outward
    double tlo, thi;  // accepted hit range along r.d
    int64_t index;    // which ray (-1: slot free)
    bool hit;
    Bvh4Ref cur;
    int sp;
    PendingNode stack[kPathSize];
};

// Fetches the node `child` (count == 0) or the leaf's triangles (9 values of type T each) into the cache.
template <typename T>
inline void fetch(const Bvh4Node* nd, const T* tri, int32_t child, int32_t count) {
    if (count == 0) {
        const char* p = reinterpret_cast<const char*>(nd + child);
        prefetch(p);
        prefetch(p + 64);
    } else {
        const char* p = reinterpret_cast<const char*>(tri + 9 * static_cast<std::size_t>(child));
        const char* end = p + 9 * sizeof(T) * count;
        for (; p < end; p += 64) prefetch(p);
        prefetch(end - 1);
    }
}

class Traversal {
  public:
    Traversal(const Bvh4Node* nodes, const double* tri_v, const int64_t* tri_id, const double* centre,
              double unit, double extent)
        : nd_(nodes), tri_v_(tri_v), tri_id_(tri_id), centre_(centre), unit_(unit), extent_(extent) {}

    // Starts a ray; returns false if there is nothing to traverse.
    bool start(RayState& s, int64_t index, const double* o, const double* d, double tmin, double tmax) const {
        s.index = index;
        s.best_t = kInf;
        s.best_k = -1;
        s.best_id = -1;
        setup_ray(s.r, o, d, centre_, unit_, extent_);
        s.tlo = tmin / s.r.scale;
        s.thi = tmax / s.r.scale;
        s.vtmin = f4_set1(round_down(s.tlo * unit_));
        s.limit = round_up(s.thi * unit_);
        s.vtmax = f4_set1(s.limit);
        s.sp = 0;
        s.cur = StackEntry{0, 0, 0.0f};
        return nd_ != nullptr;
    }

    // Advances the ray by one node or leaf; returns false when it is done.
    bool step(RayState& s) const {
        if (s.cur.count == 0) {
            const Bvh4Node& node = nd_[s.cur.child];
            f4 tn;
            const int mask = box_hits(node, s.r, s.vtmin, s.vtmax, tn);
            if (mask != 0) {
                float dist[4];
                f4_store(dist, tn);
                push_sorted(node, mask, dist, s.stack, s.sp, s.cur);
                fetch(s.cur);  // only the next one: prefetching the pushed siblings too measured no faster
                return true;
            }
        } else {
            const int32_t end = s.cur.child + s.cur.count;
            bool improved = false;
            for (int32_t k = s.cur.child; k < end; ++k) {
                const double t = intersect(tri_v_ + 9 * static_cast<std::size_t>(k), s.r);
                if (!((t >= s.tlo) & (t <= s.thi) & (t <= s.best_t) & (t < kInf))) continue;
                const int64_t id = tri_id_[k];
                if (t < s.best_t || id < s.best_id) {
                    s.best_t = t;
                    s.best_id = id;
                    s.best_k = k;
                    improved = true;
                }
            }
            if (improved) {
                s.limit = round_up(s.best_t * unit_);
                s.vtmax = f4_set1(s.limit);
            }
        }
        // the next pending child still in front of the best hit
        while (s.sp > 0 && s.stack[s.sp - 1].t > s.limit) --s.sp;
        if (s.sp == 0) return false;
        s.cur = s.stack[--s.sp];
        fetch(s.cur);
        return true;
    }

  private:
    const Bvh4Node* nd_;
    const double* tri_v_;
    const int64_t* tri_id_;
    const double* centre_;  // box frame: box coordinates are (x - centre) * unit, ray parameters t * unit
    double unit_;
    double extent_;

    void fetch(const StackEntry& e) const {
        twin::fetch(nd_, tri_v_, e.child, e.count);
        if (e.count > 0) prefetch(tri_id_ + e.child);
    }
};

// Any-hit traversal for occlusion. Measured on a 1M-triangle city mesh, visiting children nearest first
// saves no visits here (a shadow ray mostly stops in the first leaf it reaches) but costs a sort with
// unpredictable branches per node, so children are visited in their stored order, without branches.
class ShadowTraversal {
  public:
    ShadowTraversal(const Bvh4Node* nodes, const double* tri_v, const float* tri_f, const double* centre,
                    double unit, double extent)
        : nd_(nodes), tri_v_(tri_v), tri_f_(tri_f), centre_(centre), unit_(unit), extent_(extent) {}

    // Starts a ray; returns false if there is nothing to traverse.
    bool start(ShadowState& s, int64_t index, const double* o, const double* d, double tmin,
               double tmax) const {
        s.index = index;
        s.hit = false;
        setup_ray(s.r, o, d, centre_, unit_, extent_);
        s.tlo = tmin / s.r.scale;
        s.thi = tmax / s.r.scale;
        s.vtmin = f4_set1(round_down(s.tlo * unit_));
        s.vtmax = f4_set1(round_up(s.thi * unit_));
        setup_filter(s.f, s.r, centre_, unit_, extent_, s.tlo, s.thi);
        s.sp = 0;
        s.cur = Bvh4Ref{0, 0};
        return nd_ != nullptr;
    }

    // Advances the ray by one node or leaf; returns false when it is done (s.hit tells whether it hit).
    bool step(ShadowState& s) const {
        if (s.cur.count == 0) {
            const Bvh4Node& node = nd_[s.cur.child];
            const int mask = box_hits(node, s.r, s.vtmin, s.vtmax);
            s.stack[s.sp] = PendingNode{s.cur.child, mask};
            s.sp += mask != 0;
        } else {
            const int32_t end = s.cur.child + s.cur.count;
            for (int32_t k = s.cur.child; k < end; ++k) {
                const std::size_t i = 9 * static_cast<std::size_t>(k);
                const int answer = s.f.on ? filter_test(tri_f_ + i, s.f) : kFilterUnsure;
                if (answer == kFilterMiss) continue;
                bool hit = answer == kFilterHit;
                if (!hit) {
                    const double t = intersect(tri_v_ + i, s.r);
                    hit = (t >= s.tlo) & (t <= s.thi) & (t < kInf);
                }
                if (hit) {
                    s.hit = true;
                    return false;
                }
            }
        }
        if (s.sp == 0) return false;
        PendingNode& e = s.stack[s.sp - 1];
        const int i = lowest_bit(e.mask);
        e.mask &= e.mask - 1;
        s.sp -= e.mask == 0;
        s.cur = nd_[e.node].ref[i];  // the node was just read or is on the current path: cached
#ifdef TWIN_BVH_SSE
        fetch(nd_, tri_f_, s.cur.child, s.cur.count);  // the float64 copy only if the filter is unsure
#else
        fetch(nd_, tri_v_, s.cur.child, s.cur.count);
#endif
        return true;
    }

  private:
    const Bvh4Node* nd_;
    const double* tri_v_;
    const float* tri_f_;
    const double* centre_;
    double unit_;
    double extent_;
};

// Runs `start`/`step` over rays [0, n) with kInterleave rays in flight per thread, calling finish(state)
// for each ray once it is done.
template <typename State, typename Trav, typename Start, typename Finish>
void run_interleaved(const Trav& trav, int64_t n, Start start, Finish finish) {
    const int64_t n_chunks = (n + kChunk - 1) / kChunk;
#pragma omp parallel for schedule(dynamic, 1) if (n_chunks > 1)
    for (int64_t c = 0; c < n_chunks; ++c) {
        const int64_t end = std::min(n, (c + 1) * kChunk);
        int64_t next = c * kChunk;
        State states[kInterleave];
        int active = 0;
        // fill a slot with the next ray that has something to traverse
        auto refill = [&](State& s) {
            while (next < end) {
                const int64_t i = next++;
                if (start(s, i)) return true;
                finish(s);
            }
            s.index = -1;
            return false;
        };
        for (State& s : states) active += refill(s) ? 1 : 0;
        while (active > 0) {
            for (State& s : states) {
                if (s.index < 0) continue;
                if (trav.step(s)) continue;
                finish(s);
                if (!refill(s)) --active;
            }
        }
    }
}

}  // namespace

void TriangleBVH::cast_rays(const double* origins, const double* directions, std::size_t n, double tmin,
                            double tmax, double* t_out, int64_t* tri_out, double* normal_out,
                            double* point_out) const {
    const Bvh4Node* nd = nodes_.empty() ? nullptr : nodes_.data();
    const Traversal trav(nd, tri_v_.data(), tri_id_.data(), centre_, unit_, extent_);
    auto start = [&](RayState& s, int64_t i) {
        return trav.start(s, i, origins + 3 * i, directions + 3 * i, tmin, tmax);
    };
    auto finish = [&](const RayState& s) {
        const int64_t i = s.index;
        t_out[i] = s.best_t * s.r.scale;
        tri_out[i] = s.best_id;
        if (!normal_out && !point_out) return;
        double nrm[3], pt[3];
        if (s.best_k >= 0) {
            triangle_normal(tri_v_.data() + 9 * static_cast<std::size_t>(s.best_k), nrm);
            if (dot3(nrm, s.r.d) > 0)
                for (double& x : nrm) x = -x;
            for (int a = 0; a < 3; ++a) pt[a] = s.r.o[a] + s.best_t * s.r.d[a];
        } else {
            for (int a = 0; a < 3; ++a) nrm[a] = pt[a] = std::nan("");
        }
        for (int a = 0; a < 3; ++a) {
            if (normal_out) normal_out[3 * i + a] = nrm[a];
            if (point_out) point_out[3 * i + a] = pt[a];
        }
    };
    run_interleaved<RayState>(trav, static_cast<int64_t>(n), start, finish);
}

void TriangleBVH::occluded(const double* a, const double* b, std::size_t n, double eps, uint8_t* out) const {
    const Bvh4Node* nd = nodes_.empty() ? nullptr : nodes_.data();
    const ShadowTraversal trav(nd, tri_v_.data(), tri_f_.data(), centre_, unit_, extent_);
    auto start = [&](ShadowState& s, int64_t i) {
        const double d[3] = {b[3 * i] - a[3 * i], b[3 * i + 1] - a[3 * i + 1], b[3 * i + 2] - a[3 * i + 2]};
        if (d[0] == 0 && d[1] == 0 && d[2] == 0) {  // an empty segment: nothing to cross
            s.index = i;
            s.hit = false;
            return false;
        }
        return trav.start(s, i, a + 3 * i, d, eps, 1.0 - eps);
    };
    auto finish = [&](const ShadowState& s) { out[s.index] = s.hit ? 1 : 0; };
    run_interleaved<ShadowState>(trav, static_cast<int64_t>(n), start, finish);
}

void TriangleBVH::closest_points(const double* points, std::size_t n, double* closest, int64_t* tri_out,
                                 double* distance) const {
    const Bvh4Node* nd = nodes_.empty() ? nullptr : nodes_.data();
    const int64_t nn = static_cast<int64_t>(n);
#pragma omp parallel for schedule(dynamic, 128) if (nn > 256)
    for (int64_t i = 0; i < nn; ++i) {
        const double* p = points + 3 * i;
        double best_d2 = kInf;
        int64_t best_id = -1;
        double best_q[3] = {std::nan(""), std::nan(""), std::nan("")};
        if (nd != nullptr) {
            // The query point relative to the centre, as a float interval padded by the rounding bound.
            f4 p_up[3], p_dn[3];
            for (int a = 0; a < 3; ++a) {
                const double rel = (p[a] - centre_[a]) * unit_;
                const double delta = kBoxPad * (std::fabs(rel) + extent_);
                p_up[a] = f4_set1(round_up(rel + delta));
                p_dn[a] = f4_set1(round_down(rel - delta));
            }
            const f4 zero = f4_set1(0.0f), shrink = f4_set1(1.0f - 1e-6f);
            StackEntry stack[kStackSize];
            int sp = 0;
            StackEntry cur{0, 0, 0.0f};
            float limit = kInfF;
            while (true) {
                if (cur.count == 0) {
                    const Bvh4Node& node = nd[cur.child];
                    f4 s = zero;
                    for (int a = 0; a < 3; ++a) {
                        const f4 e = f4_max(
                            f4_max(f4_load(node.box[a]) - p_up[a], p_dn[a] - f4_load(node.box[3 + a])), zero);
                        s = s + e * e;
                    }
                    s = s * shrink;  // a lower bound of the true squared distance despite float rounding
                    const int mask = f4_le_mask(s, f4_set1(limit)) &
                                     ((node.ref[0].child >= 0 ? 1 : 0) | (node.ref[1].child >= 0 ? 2 : 0) |
                                      (node.ref[2].child >= 0 ? 4 : 0) | (node.ref[3].child >= 0 ? 8 : 0));
                    if (mask != 0) {
                        float dist[4];
                        f4_store(dist, s);
                        push_sorted(node, mask, dist, stack, sp, cur);
                        continue;
                    }
                } else {
                    bool improved = false;
                    for (int32_t k = cur.child; k < cur.child + cur.count; ++k) {
                        double q[3];
                        closest_on_triangle(p, &tri_v_[9 * static_cast<std::size_t>(k)], q);
                        const double d2 = dist2(p, q);
                        if (d2 <= best_d2) {
                            const int64_t id = tri_id_[k];
                            if (d2 < best_d2 || id < best_id) {
                                best_d2 = d2;
                                best_id = id;
                                std::memcpy(best_q, q, sizeof(q));
                                improved = true;
                            }
                        }
                    }
                    if (improved) {  // the best squared distance in box units, rounded up
                        const double b = std::sqrt(best_d2) * unit_;
                        limit = round_up(b * b * (1.0 + 1e-12));
                    }
                }
                while (sp > 0 && stack[sp - 1].t > limit) --sp;
                if (sp == 0) break;
                cur = stack[--sp];
            }
        }
        for (int a = 0; a < 3; ++a) closest[3 * i + a] = best_q[a];
        tri_out[i] = best_id;
        distance[i] = std::sqrt(best_d2);
    }
}

}  // namespace twin
