// NeighborGrid: counting-sort rebuild, radius queries (two-pass CSR), k-nearest by expanding rings.
#include "twin/neighbor_grid.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <new>
#include <stdexcept>
#include <string>

#ifdef _OPENMP
#include <omp.h>
#endif
#ifdef __linux__
#include <sys/mman.h>
#endif

namespace twin {

void* allocate_large(size_t bytes) {
    constexpr size_t kHuge = size_t(2) << 20;
    void* p = nullptr;
    if (bytes >= 2 * kHuge) {
        const size_t rounded = (bytes + kHuge - 1) / kHuge * kHuge;
        if (posix_memalign(&p, kHuge, rounded) != 0) p = nullptr;
#ifdef __linux__
        if (p) madvise(p, rounded, MADV_HUGEPAGE);  // a hint: harmless if huge pages are unavailable
#endif
    } else {
        p = std::malloc(bytes);
    }
    if (!p) throw std::bad_alloc();
    return p;
}

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr double kMaxAxisCells = 1099511627776.0;  // 2^40 cells per axis at most (hashed mode)
constexpr double kQueryClamp = 4398046511104.0;    // query cell coordinates are clamped to +-2^42
constexpr int64_t kDenseCap = int64_t(1) << 26;    // never more than 2^26 dense cells
constexpr int64_t kMinParallel = 1 << 15;          // below this many points a rebuild runs serially

int max_threads() {
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}

int thread_id() {
#ifdef _OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}

int team_size() {
#ifdef _OPENMP
    return omp_get_num_threads();
#else
    return 1;
#endif
}

struct Entry {
    double d;
    int64_t i;
};

// (distance, index) order. Distances are never negative, so their IEEE bit patterns order like the values and
// integer comparisons can be used (no NaN handling in the hot sort).
inline bool by_distance(const Entry& a, const Entry& b) {
    uint64_t x, y;
    std::memcpy(&x, &a.d, sizeof x);
    std::memcpy(&y, &b.d, sizeof y);
    return x < y || (x == y && a.i < b.i);
}

template <typename Less>
void sort_entries(Entry* e, size_t m, Less less) {
    if (m <= 24) {  // rows are short (about a dozen neighbours): insertion sort beats std::sort
        for (size_t a = 1; a < m; ++a) {
            Entry x = e[a];
            size_t b = a;
            while (b > 0 && less(x, e[b - 1])) {
                e[b] = e[b - 1];
                --b;
            }
            e[b] = x;
        }
    } else {
        std::sort(e, e + m, less);
    }
}

// Write entries to idx/dist in (distance, index) order. Short rows (the usual dozen neighbours) are placed by
// rank — a branch-free count of smaller distances that the compiler vectorises — instead of a branchy sort.
inline void write_by_distance(Entry* e, size_t m, int64_t* idx, double* dist) {
    constexpr size_t kRankMax = 32;
    if (m > kRankMax) {
        sort_entries(e, m, [](const Entry& x, const Entry& y) { return by_distance(x, y); });
        for (size_t a = 0; a < m; ++a) idx[a] = e[a].i, dist[a] = e[a].d;
        return;
    }
    double d[kRankMax];
    for (size_t a = 0; a < m; ++a) d[a] = e[a].d;
    for (size_t a = 0; a < m; ++a) {
        const double x = d[a];
        size_t lt = 0, le = 0;
        for (size_t b = 0; b < m; ++b) {
            lt += d[b] < x;
            le += d[b] <= x;
        }
        size_t r = lt;
        if (le - lt > 1) {  // equal distances: order them by index
            for (size_t b = 0; b < m; ++b) r += (d[b] == x && e[b].i < e[a].i);
        }
        idx[r] = e[a].i;
        dist[r] = x;
    }
}

inline uint64_t hash_cell(const int64_t* c, int dim) {
    uint64_t h = 0x9E3779B97F4A7C15ull;
    for (int a = 0; a < dim; ++a) {
        h = (h ^ static_cast<uint64_t>(c[a])) * 0xBF58476D1CE4E5B9ull;
        h ^= h >> 31;
    }
    return h * 0x94D049BB133111EBull;
}

}  // namespace

// Everything a query kernel reads, as raw pointers (the grid is immutable during queries).
struct NeighborGrid::View {
    int64_t n;
    double origin[3];
    int64_t cells[3];
    double cs, inv;
    double max_abs;
    bool hashed;
    bool single;  // one cell holds every point: scan them all
    uint64_t mask;
    const int64_t* start;
    const double* pts;
    const int64_t* ids;

    explicit View(const NeighborGrid& g)
        : n(g.n_),
          origin{g.origin_[0], g.origin_[1], g.origin_[2]},
          cells{g.cells_[0], g.cells_[1], g.cells_[2]},
          cs(g.cs_),
          inv(g.inv_cs_),
          max_abs(g.max_abs_),
          hashed(g.hashed_),
          single(!g.hashed_ && g.buckets_ == 1),
          mask(static_cast<uint64_t>(g.buckets_ > 0 ? g.buckets_ - 1 : 0)),
          start(g.start_.data()),
          pts(g.pts_.data()),
          ids(g.ids_.data()) {}

    // Cell coordinate of an indexed point along axis a (always inside the grid; NaN-safe).
    int64_t point_cell(double x, int a) const {
        double v = (x - origin[a]) * inv;
        v = v > 0 ? v : 0;
        const double top = static_cast<double>(cells[a] - 1);
        v = v < top ? v : top;
        return static_cast<int64_t>(v);
    }
    // Cell coordinate of an arbitrary position (may lie outside the grid; clamped to +-2^42).
    int64_t query_cell(double x, int a) const {
        double v = std::floor((x - origin[a]) * inv);
        v = v > -kQueryClamp ? v : -kQueryClamp;
        v = v < kQueryClamp ? v : kQueryClamp;
        return static_cast<int64_t>(v);
    }
    template <int D>
    uint64_t bucket(const int64_t* c) const {
        if (hashed) return hash_cell(c, D) & mask;
        int64_t b = c[D - 1];
        for (int a = D - 2; a >= 0; --a) b = b * cells[a] + c[a];
        return static_cast<uint64_t>(b);
    }
    // Bucket of an arbitrary position, clamped into the grid (used to order queries for cache locality).
    template <int D>
    uint64_t clamped_bucket(const double* q) const {
        int64_t c[3];
        for (int a = 0; a < D; ++a) c[a] = point_cell(q[a], a);
        return bucket<D>(c);
    }
    // Is sorted point j in cell c? (Only needed when hashing may put several cells in one bucket.)
    template <int D>
    bool in_cell(int64_t j, const int64_t* c) const {
        for (int a = 0; a < D; ++a)
            if (point_cell(pts[j * D + a], a) != c[a]) return false;
        return true;
    }
    // Absolute slack that covers rounding in cell assignment and distances near position q.
    template <int D>
    double slack(const double* q, double r) const {
        double m = max_abs + r + cs;
        for (int a = 0; a < D; ++a) m = std::max(m, std::fabs(q[a]));
        return 1e-12 * m + 1e-300;
    }
    // Call visit(j) for each sorted point j in cell c.
    template <int D, typename F>
    void scan_cell(const int64_t* c, F&& visit) const {
        const uint64_t b = bucket<D>(c);
        const int64_t e = start[b + 1];
        if (hashed) {
            for (int64_t j = start[b]; j < e; ++j)
                if (in_cell<D>(j, c)) visit(j);
        } else {
            for (int64_t j = start[b]; j < e; ++j) visit(j);
        }
    }
    bool cell_empty_or_absent(uint64_t b) const { return start[b] == start[b + 1]; }

    // Call visit(j) for every sorted point j that may lie within r of q (a superset: cells overlapping the
    // query box). Falls back to all points when the box spans more cells than 4 n + 64.
    template <int D, typename F>
    void candidates(const double* q, double r, F&& visit) const {
        if (n == 0) return;
        if (single) {
            for (int64_t j = 0; j < n; ++j) visit(j);
            return;
        }
        const double s = slack<D>(q, r);
        int64_t lo[3], hi[3];
        double ncell = 1;
        for (int a = 0; a < D; ++a) {
            lo[a] = std::max<int64_t>(query_cell(q[a] - r - s, a), 0);
            hi[a] = std::min<int64_t>(query_cell(q[a] + r + s, a), cells[a] - 1);
            if (lo[a] > hi[a]) return;
            ncell *= static_cast<double>(hi[a] - lo[a] + 1);
        }
        if (ncell > 4.0 * static_cast<double>(n) + 64.0) {
            for (int64_t j = 0; j < n; ++j) visit(j);
            return;
        }
        if (!hashed) {  // dense: cells along x are consecutive, so each x-run is one contiguous range of
                        // points
            if (D == 2) {
                for (int64_t y = lo[1]; y <= hi[1]; ++y) {
                    const int64_t row = y * cells[0];
                    const int64_t e = start[row + hi[0] + 1];
                    for (int64_t j = start[row + lo[0]]; j < e; ++j) visit(j);
                }
            } else {
                for (int64_t z = lo[2]; z <= hi[2]; ++z)
                    for (int64_t y = lo[1]; y <= hi[1]; ++y) {
                        const int64_t row = (z * cells[1] + y) * cells[0];
                        const int64_t e = start[row + hi[0] + 1];
                        for (int64_t j = start[row + lo[0]]; j < e; ++j) visit(j);
                    }
            }
            return;
        }
        int64_t c[3] = {0, 0, 0};
        if (D == 2) {
            for (c[1] = lo[1]; c[1] <= hi[1]; ++c[1])
                for (c[0] = lo[0]; c[0] <= hi[0]; ++c[0]) scan_cell<D>(c, visit);
        } else {
            for (c[2] = lo[2]; c[2] <= hi[2]; ++c[2])
                for (c[1] = lo[1]; c[1] <= hi[1]; ++c[1])
                    for (c[0] = lo[0]; c[0] <= hi[0]; ++c[0]) scan_cell<D>(c, visit);
        }
    }

    template <int D>
    double dist2(int64_t j, const double* q) const {
        const double* p = pts + j * D;
        double d0 = p[0] - q[0];
        double d1 = p[1] - q[1];
        double s = d0 * d0 + d1 * d1;
        if (D == 3) {
            double d2 = p[2] - q[2];
            s += d2 * d2;
        }
        return s;
    }

    // Squared-distance bounds for "sqrt(d2) <= r": below lo2 a point is surely in, above hi2 surely out, and
    // in between (a band of a few ulps) the exact test decides. Safe for subnormal and overflowing squares.
    struct RadiusBand {
        double r, lo2, hi2;
        explicit RadiusBand(double radius)
            : r(radius),
              lo2(radius * radius >= 1e-290
                      ? std::min(radius * radius * (1 - 1e-14), std::numeric_limits<double>::max())
                      : 0.0),
              hi2(radius * radius * (1 + 1e-14) + 1e-290) {}
    };

    // Number of points within r of q (distance = sqrt of the summed squared differences, <= r) whose original
    // index passes accept(id). Distances are only rooted in the narrow band around r.
    template <int D, typename Accept>
    int64_t count_within(const double* q, const RadiusBand& b, Accept&& accept) const {
        int64_t m = 0;
        candidates<D>(q, b.r, [&](int64_t j) {
            const double d2 = dist2<D>(j, q);
            if (d2 <= b.lo2) {
                m += accept(ids[j]) ? 1 : 0;
            } else if (d2 <= b.hi2 && std::sqrt(d2) <= b.r) {
                m += accept(ids[j]) ? 1 : 0;
            }
        });
        return m;
    }

    // Same hits as count_within, each passed to emit(id, distance).
    template <int D, typename Accept, typename Emit>
    void within(const double* q, const RadiusBand& b, Accept&& accept, Emit&& emit) const {
        candidates<D>(q, b.r, [&](int64_t j) {
            const double d2 = dist2<D>(j, q);
            if (d2 > b.hi2) return;
            const double d = std::sqrt(d2);
            if (d > b.r) return;
            const int64_t id = ids[j];
            if (accept(id)) emit(id, d);
        });
    }

    // The kn nearest points of q, excluding original index `self` (-1: none), into top[0..kn) sorted by
    // (distance, index); returns how many were found.
    template <int D>
    int64_t knn(const double* q, int64_t kn, int64_t self, Entry* top) const {
        int64_t cnt = 0;
        double thr2 = kInf;  // d2 above this cannot enter the full list
        auto consider = [&](int64_t j) {
            const double d2 = dist2<D>(j, q);
            if (d2 > thr2) return;
            const int64_t id = ids[j];
            if (id == self) return;
            const Entry x{std::sqrt(d2), id};
            if (cnt == kn && !by_distance(x, top[kn - 1])) return;
            int64_t b = cnt < kn ? cnt++ : kn - 1;
            while (b > 0 && by_distance(x, top[b - 1])) {
                top[b] = top[b - 1];
                --b;
            }
            top[b] = x;
            if (cnt == kn) {
                const double dk = top[kn - 1].d;
                thr2 = dk * dk * (1 + 1e-14) + 1e-290;  // d2 > thr2 implies sqrt(d2) > dk after rounding
            }
        };
        const int64_t available = n - (self >= 0 && self < n ? 1 : 0);
        if (kn <= 0 || n == 0) return 0;
        if (kn >= available || single) {  // every point is an answer, or all share one cell: scan them all
            for (int64_t j = 0; j < n; ++j) consider(j);
            return cnt;
        }
        const double s = slack<D>(q, 0.0);
        int64_t c[3], lo[3], hi[3], L[3], H[3];
        int64_t r0 = 0;
        for (int a = 0; a < D; ++a) {
            c[a] = query_cell(q[a], a);
            r0 = std::max(r0, std::max(-c[a], c[a] - (cells[a] - 1)));
        }
        const double limit = 4.0 * static_cast<double>(n) + 64.0;
        double visited = 0;
        bool brute = false;
        auto cell = [&](const int64_t* cc) {
            visited += 1;
            if (visited > limit) {
                brute = true;
                return;
            }
            if (!hashed && cell_empty_or_absent(bucket<D>(cc))) return;
            if (cnt == kn) {  // skip cells whose box is farther than the current k-th distance
                double m2 = 0;
                for (int a = 0; a < D; ++a) {
                    const double lo_x = origin[a] + static_cast<double>(cc[a]) * cs;
                    const double hi_x = origin[a] + static_cast<double>(cc[a] + 1) * cs;
                    const double g = std::max(0.0, std::max(lo_x - q[a], q[a] - hi_x));
                    m2 += g * g;
                }
                const double lim = top[kn - 1].d + s;
                if (m2 > lim * lim) return;
            }
            scan_cell<D>(cc, consider);
        };
        // First the 2^D cells nearest to q (its own and the neighbours on the sides q is closer to): they
        // hold the likely answers, so the k-th distance is small before the rest of ring 1 is checked against
        // it.
        int64_t side[3] = {0, 0, 0};
        const bool block = r0 == 0;
        if (block) {
            for (int a = 0; a < D; ++a)
                side[a] = q[a] >= origin[a] + (static_cast<double>(c[a]) + 0.5) * cs ? 1 : -1;
            int64_t cc[3] = {0, 0, 0};
            for (int m = 0; m < (1 << D) && !brute; ++m) {
                bool inside = true;
                for (int a = 0; a < D; ++a) {
                    cc[a] = c[a] + (((m >> a) & 1) ? side[a] : 0);
                    inside = inside && cc[a] >= 0 && cc[a] < cells[a];
                }
                if (inside) cell(cc);
            }
        }
        auto in_block = [&](const int64_t* cc) {
            for (int a = 0; a < D; ++a)
                if (cc[a] != c[a] && cc[a] != c[a] + side[a]) return false;
            return true;
        };
        for (int64_t R = r0;; ++R) {
            bool covered = true;
            for (int a = 0; a < D; ++a) {
                lo[a] = c[a] - R;
                hi[a] = c[a] + R;
                L[a] = std::max<int64_t>(lo[a], 0);
                H[a] = std::min<int64_t>(hi[a], cells[a] - 1);
                covered = covered && lo[a] <= 0 && hi[a] >= cells[a] - 1;
            }
            // The shell of cells at Chebyshev distance R from c, clipped to the grid, each cell once. Work is
            // proportional to the cells visited (counted against the limit), however far the query is.
            const bool row_lo = lo[1] >= 0 && lo[1] < cells[1];
            const bool row_hi = hi[1] != lo[1] && hi[1] >= 0 && hi[1] < cells[1];
            const bool col_lo = lo[0] >= 0 && lo[0] < cells[0];
            const bool col_hi = hi[0] != lo[0] && hi[0] >= 0 && hi[0] < cells[0];
            int64_t cc[3] = {0, 0, 0};
            const bool skip_block = block && R <= 1;
            auto shell_cell = [&](const int64_t* x) {
                if (!(skip_block && in_block(x))) cell(x);
            };
            auto row = [&](int64_t y) {
                cc[1] = y;
                for (cc[0] = L[0]; cc[0] <= H[0] && !brute; ++cc[0]) shell_cell(cc);
            };
            auto layer = [&](bool full) {  // one (x, y) layer: the whole rectangle, or only its rim
                if (full) {
                    for (int64_t y = L[1]; y <= H[1] && !brute; ++y) row(y);
                    return;
                }
                if (row_lo) row(lo[1]);
                if (row_hi && !brute) row(hi[1]);
                if (!col_lo && !col_hi) return;
                const int64_t y1 = std::min<int64_t>(hi[1] - 1, cells[1] - 1);
                for (cc[1] = std::max<int64_t>(lo[1] + 1, 0); cc[1] <= y1 && !brute; ++cc[1]) {
                    if (col_lo) cc[0] = lo[0], shell_cell(cc);
                    if (col_hi && !brute) cc[0] = hi[0], shell_cell(cc);
                }
            };
            if (D == 2) {
                layer(false);
            } else {
                if (lo[2] >= 0 && lo[2] < cells[2]) cc[2] = lo[2], layer(true);
                if (hi[2] != lo[2] && hi[2] >= 0 && hi[2] < cells[2] && !brute) cc[2] = hi[2], layer(true);
                if (row_lo || row_hi || col_lo || col_hi) {
                    const int64_t z1 = std::min<int64_t>(hi[2] - 1, cells[2] - 1);
                    for (int64_t z = std::max<int64_t>(lo[2] + 1, 0); z <= z1 && !brute; ++z)
                        cc[2] = z, layer(false);
                }
            }
            if (brute) break;
            if (covered) return cnt;
            if (cnt == kn) {  // unsearched points lie outside the box: stop if the k-th is strictly closer
                double db = kInf;
                for (int a = 0; a < D; ++a) {
                    if (lo[a] > 0) db = std::min(db, q[a] - (origin[a] + static_cast<double>(lo[a]) * cs));
                    if (hi[a] < cells[a] - 1)
                        db = std::min(db, origin[a] + static_cast<double>(hi[a] + 1) * cs - q[a]);
                }
                if (top[kn - 1].d < db - s) return cnt;
            }
        }
        // The rings became too many for the number of points: an exhaustive scan gives the same answer.
        cnt = 0;
        thr2 = kInf;
        for (int64_t j = 0; j < n; ++j) consider(j);
        return cnt;
    }
};

NeighborGrid::NeighborGrid(double cell_size, int dim) : dim_(dim), cell_size_(cell_size) {
    if (dim != 2 && dim != 3) throw std::invalid_argument("dim must be 2 or 3, got " + std::to_string(dim));
    if (!(cell_size > 0) || !std::isfinite(cell_size))
        throw std::invalid_argument("cell_size must be a finite number > 0, got " +
                                    std::to_string(cell_size));
    cs_ = cell_size;
    inv_cs_ = 1.0 / cell_size;
}

int64_t NeighborGrid::candidates(const double* q, double r, int64_t* out, int64_t cap, double* points) const {
    const View v(*this);
    const int D = dim_;
    int64_t m = 0;
    auto visit = [&](int64_t j) {
        if (m < cap) {
            out[m] = v.ids[j];
            if (points)
                for (int a = 0; a < D; ++a) points[m * D + a] = v.pts[j * D + a];
        }
        ++m;
    };
    if (dim_ == 2) {
        v.candidates<2>(q, r, visit);
    } else {
        v.candidates<3>(q, r, visit);
    }
    return m;
}

void NeighborGrid::rebuild(const double* points, int64_t n) {
    if (n < 0 || n >= (int64_t(1) << 31))
        throw std::invalid_argument("points must have fewer than 2^31 rows, got " + std::to_string(n));
    n_ = n;
    if (dim_ == 2)
        rebuild_impl<2>(points);
    else
        rebuild_impl<3>(points);
}

template <int D>
void NeighborGrid::rebuild_impl(const double* p) {
    const int64_t n = n_;
    pts_.resize(static_cast<size_t>(n * D));
    ids_.resize(static_cast<size_t>(n));
    key_.resize(static_cast<size_t>(n));
    if (n == 0) {
        hashed_ = false;
        buckets_ = 0;
        for (int a = 0; a < 3; ++a) cells_[a] = 0, origin_[a] = 0;
        start_.assign(1, 0);
        max_abs_ = 0;
        return;
    }
    double lo[3] = {kInf, kInf, kInf}, hi[3] = {-kInf, -kInf, -kInf};
    for (int64_t i = 0; i < n; ++i)
        for (int a = 0; a < D; ++a) {
            const double x = p[i * D + a];
            lo[a] = x < lo[a] ? x : lo[a];
            hi[a] = x > hi[a] ? x : hi[a];
        }
    max_abs_ = 0;
    for (int a = 0; a < D; ++a) max_abs_ = std::max({max_abs_, std::fabs(lo[a]), std::fabs(hi[a])});

    // Dense grid if the box needs few enough cells, else hashing (see the header).
    cs_ = cell_size_;
    inv_cs_ = 1.0 / cs_;
    bool overflow = false;  // coordinates spread over more than ~1.8e308: one cell, every query scans all
    for (int a = 0; a < D; ++a) overflow = overflow || !std::isfinite(hi[a] - lo[a]);
    double total = 1, widest = 0;
    for (int a = 0; a < D; ++a) {
        const double span = std::floor((hi[a] - lo[a]) * inv_cs_) + 1;  // inf/NaN-safe below
        total *= span;
        widest = std::max(widest, (hi[a] - lo[a]));
    }
    const int64_t cap = std::min<int64_t>(4 * n + 1024, kDenseCap);
    hashed_ = !overflow && !(total <= static_cast<double>(cap));
    if (hashed_ && !(widest * inv_cs_ <= kMaxAxisCells)) {
        cs_ = widest / kMaxAxisCells;
        if (!(cs_ > 0) || !std::isfinite(cs_)) cs_ = std::numeric_limits<double>::max();
        inv_cs_ = 1.0 / cs_;
    }
    for (int a = 0; a < 3; ++a) {
        origin_[a] = a < D ? lo[a] : 0;
        double span = a < D && !overflow ? std::floor((hi[a] - lo[a]) * inv_cs_) + 1 : 1;
        if (!(span >= 1)) span = 1;  // NaN from an overflowing extent: one cell along this axis
        cells_[a] = static_cast<int64_t>(std::min(span, kMaxAxisCells + 1));
    }
    if (hashed_) {
        int64_t b = 1024;
        while (b < 2 * n) b <<= 1;
        buckets_ = b;
    } else {
        buckets_ = 1;
        for (int a = 0; a < D; ++a) buckets_ *= cells_[a];
    }
    start_.resize(static_cast<size_t>(buckets_ + 1));

    const View v(*this);
    const int64_t B = buckets_;
    const int T = n >= kMinParallel ? max_threads() : 1;
    hist_.resize(static_cast<size_t>(B) * T);
    uint32_t* key = key_.data();
    double* out_p = pts_.data();
    int64_t* out_i = ids_.data();
    int64_t* start = start_.data();

    // Stable counting sort: each thread counts a contiguous chunk, a prefix over (bucket, thread) gives each
    // thread its write cursors, and the scatter keeps input order within a bucket — the same permutation for
    // any number of threads.
#pragma omp parallel num_threads(T)
    {
        const int nt = team_size();
        const int t = thread_id();
        const int64_t b0 = n * t / nt, b1 = n * (t + 1) / nt;
        uint32_t* h = hist_.data() + static_cast<size_t>(B) * t;
        std::memset(h, 0, sizeof(uint32_t) * static_cast<size_t>(B));
        for (int64_t i = b0; i < b1; ++i) {
            int64_t c[3];
            for (int a = 0; a < D; ++a) c[a] = v.point_cell(p[i * D + a], a);
            const uint32_t k = static_cast<uint32_t>(v.bucket<D>(c));
            key[i] = k;
            ++h[k];
        }
#pragma omp barrier
#pragma omp single
        {
            uint64_t run = 0;
            for (int64_t b = 0; b < B; ++b) {
                start[b] = static_cast<int64_t>(run);
                for (int u = 0; u < nt; ++u) {
                    uint32_t* hu = hist_.data() + static_cast<size_t>(B) * u + b;
                    const uint32_t cnt = *hu;
                    *hu = static_cast<uint32_t>(run);
                    run += cnt;
                }
            }
            start[B] = n;
        }
        for (int64_t i = b0; i < b1; ++i) {
            const uint32_t pos = h[key[i]]++;
            for (int a = 0; a < D; ++a) out_p[static_cast<size_t>(pos) * D + a] = p[i * D + a];
            out_i[pos] = i;
        }
    }
}

namespace {

struct ByIndex {
    bool operator()(const Entry& a, const Entry& b) const { return a.i < b.i; }
};

// Queries in the order they are processed: grouped by the bucket each falls in, and copied contiguously, so
// that consecutive queries read the same cells and memory (a large speed-up for big random batches). Results
// never depend on this order.
struct QueryPlan {
    std::vector<int64_t> order;  // processing position -> query row (empty: identity)
    std::vector<double> gathered;
    const double* q = nullptr;  // (k * D) queries in processing order
    int64_t row(int64_t t) const { return order.empty() ? t : order[t]; }
};

template <int D>
QueryPlan plan_queries(const NeighborGrid::View& v, const double* q, int64_t k, int64_t buckets) {
    QueryPlan plan;
    plan.q = q;
    if (k < 4096 || v.n == 0) return plan;
    std::vector<uint32_t> key(static_cast<size_t>(k));
    std::vector<int64_t> cnt(static_cast<size_t>(buckets) + 1, 0);
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < k; ++i) key[i] = static_cast<uint32_t>(v.clamped_bucket<D>(q + i * D));
    for (int64_t i = 0; i < k; ++i) ++cnt[key[i] + 1];
    for (int64_t b = 0; b < buckets; ++b) cnt[b + 1] += cnt[b];
    plan.order.resize(static_cast<size_t>(k));
    for (int64_t i = 0; i < k; ++i) plan.order[cnt[key[i]]++] = i;
    plan.gathered.resize(static_cast<size_t>(k * D));
#pragma omp parallel for schedule(static)
    for (int64_t t = 0; t < k; ++t)
        for (int a = 0; a < D; ++a) plan.gathered[t * D + a] = q[plan.order[t] * D + a];
    plan.q = plan.gathered.data();
    return plan;
}

// Two-pass CSR over `rows` query rows processed in plan order: count(t) gives the hits of the t-th processed
// query, collect(t, emit) emits them as (id, distance). sort: 0 scan order, 1 by (distance, index), 2 by
// index.
template <typename Plan, typename Count, typename Collect>
void two_pass(int64_t rows, const Plan& plan, Count count, Collect collect, int sort, CsrNeighbors& out) {
    out.offsets.allocate(rows + 1);
    int64_t* off = out.offsets.data.get();
    std::vector<int64_t> at(static_cast<size_t>(rows));  // per processing position: count, then output start
#pragma omp parallel for schedule(dynamic, 1024)
    for (int64_t t = 0; t < rows; ++t) at[t] = count(t);
    off[0] = 0;
    for (int64_t t = 0; t < rows; ++t) off[plan.row(t) + 1] = at[t];
    for (int64_t r = 0; r < rows; ++r) off[r + 1] += off[r];
    for (int64_t t = 0; t < rows; ++t) at[t] = off[plan.row(t)];
    const int64_t nnz = off[rows];
    out.indices.allocate(nnz);
    out.distances.allocate(nnz);
    int64_t* idx = out.indices.data.get();
    double* dist = out.distances.data.get();
#pragma omp parallel
    {
        std::vector<Entry> buf;
#pragma omp for schedule(dynamic, 1024)
        for (int64_t t = 0; t < rows; ++t) {
            if (t + 1 < rows) {  // the next row's output lands elsewhere in memory: start fetching it
                __builtin_prefetch(idx + at[t + 1], 1);
                __builtin_prefetch(dist + at[t + 1], 1);
            }
            buf.clear();
            collect(t, [&](int64_t id, double d) { buf.push_back({d, id}); });
            if (sort == 1) {
                write_by_distance(buf.data(), buf.size(), idx + at[t], dist + at[t]);
                continue;
            }
            if (sort == 2) sort_entries(buf.data(), buf.size(), ByIndex());
            int64_t o = at[t];
            for (const Entry& e : buf) {
                idx[o] = e.i;
                dist[o] = e.d;
                ++o;
            }
        }
    }
}

template <int D>
CsrNeighbors radius_impl(const NeighborGrid::View& v, int64_t buckets, const double* q, int64_t k, double r,
                         bool exclude_self, bool sort) {
    CsrNeighbors out;
    const QueryPlan plan = plan_queries<D>(v, q, k, buckets);
    const NeighborGrid::View::RadiusBand band(r);
    auto any = [](int64_t) { return true; };
    if (exclude_self) {
        auto count = [&](int64_t t) {
            const int64_t self = plan.row(t);
            return v.count_within<D>(plan.q + t * D, band, [self](int64_t id) { return id != self; });
        };
        auto collect = [&](int64_t t, auto&& emit) {
            const int64_t self = plan.row(t);
            v.within<D>(plan.q + t * D, band, [self](int64_t id) { return id != self; }, emit);
        };
        two_pass(k, plan, count, collect, sort ? 1 : 0, out);
    } else {
        auto count = [&](int64_t t) { return v.count_within<D>(plan.q + t * D, band, any); };
        auto collect = [&](int64_t t, auto&& emit) { v.within<D>(plan.q + t * D, band, any, emit); };
        two_pass(k, plan, count, collect, sort ? 1 : 0, out);
    }
    return out;
}

template <int D>
KNearest knn_impl(const NeighborGrid::View& v, int64_t buckets, const double* q, int64_t k, int64_t kn,
                  bool exclude_self) {
    KNearest out;
    out.indices.allocate(k * kn);
    out.distances.allocate(k * kn);
    int64_t* idx = out.indices.data.get();
    double* dist = out.distances.data.get();
    const QueryPlan plan = plan_queries<D>(v, q, k, buckets);
#pragma omp parallel
    {
        // never more than n answers: the search list is bounded by the point count, the rest is padding
        const int64_t kfind = std::min<int64_t>(kn, v.n);
        std::vector<Entry> top(static_cast<size_t>(std::max<int64_t>(kfind, 1)));
#pragma omp for schedule(dynamic, 1024)
        for (int64_t t = 0; t < k; ++t) {
            const int64_t row = plan.row(t);
            if (t + 1 < k) {
                __builtin_prefetch(idx + plan.row(t + 1) * kn, 1);
                __builtin_prefetch(dist + plan.row(t + 1) * kn, 1);
            }
            const int64_t found = v.knn<D>(plan.q + t * D, kfind, exclude_self ? row : -1, top.data());
            for (int64_t m = 0; m < kn; ++m) {
                idx[row * kn + m] = m < found ? top[m].i : -1;
                dist[row * kn + m] = m < found ? top[m].d : kInf;
            }
        }
    }
    return out;
}

// Rows of the sorted points, processed in cell order (the stored order): row of position t is ids[t].
struct SortedPlan {
    const int64_t* ids;
    int64_t row(int64_t t) const { return ids[t]; }
};

template <int D>
Buffer<int64_t> pairs_impl(const NeighborGrid::View& v, double r) {
    CsrNeighbors csr;
    const SortedPlan plan{v.ids};
    const NeighborGrid::View::RadiusBand band(r);
    auto count = [&](int64_t t) {
        const int64_t row = v.ids[t];
        return v.count_within<D>(v.pts + t * D, band, [row](int64_t id) { return id > row; });
    };
    auto collect = [&](int64_t t, auto&& emit) {
        const int64_t row = v.ids[t];
        v.within<D>(v.pts + t * D, band, [row](int64_t id) { return id > row; }, emit);
    };
    two_pass(v.n, plan, count, collect, 2, csr);
    Buffer<int64_t> out;
    const int64_t p = csr.offsets.data[v.n];
    out.allocate(2 * p);
    const int64_t* off = csr.offsets.data.get();
    const int64_t* idx = csr.indices.data.get();
    int64_t* o = out.data.get();
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < v.n; ++i)
        for (int64_t e = off[i]; e < off[i + 1]; ++e) {
            o[2 * e] = i;
            o[2 * e + 1] = idx[e];
        }
    return out;
}

void check_radius(double r) {
    if (!(r >= 0) || !std::isfinite(r))
        throw std::invalid_argument("radius must be a finite number >= 0, got " + std::to_string(r));
}

}  // namespace

CsrNeighbors NeighborGrid::query_radius(const double* q, int64_t k, double radius, bool exclude_self,
                                        bool sort) const {
    check_radius(radius);
    if (exclude_self && k != n_)
        throw std::invalid_argument("exclude_self needs the queries to be the indexed points: " +
                                    std::to_string(k) + " queries for " + std::to_string(n_) + " points");
    const View v(*this);
    return dim_ == 2 ? radius_impl<2>(v, buckets_, q, k, radius, exclude_self, sort)
                     : radius_impl<3>(v, buckets_, q, k, radius, exclude_self, sort);
}

KNearest NeighborGrid::query_knn(const double* q, int64_t k, int64_t kn, bool exclude_self) const {
    if (kn < 1) throw std::invalid_argument("k_neighbors must be >= 1, got " + std::to_string(kn));
    if (exclude_self && k != n_)
        throw std::invalid_argument("exclude_self needs the queries to be the indexed points: " +
                                    std::to_string(k) + " queries for " + std::to_string(n_) + " points");
    const View v(*this);
    return dim_ == 2 ? knn_impl<2>(v, buckets_, q, k, kn, exclude_self)
                     : knn_impl<3>(v, buckets_, q, k, kn, exclude_self);
}

Buffer<int64_t> NeighborGrid::pairs_within(double radius) const {
    check_radius(radius);
    const View v(*this);
    return dim_ == 2 ? pairs_impl<2>(v, radius) : pairs_impl<3>(v, radius);
}

}  // namespace twin
