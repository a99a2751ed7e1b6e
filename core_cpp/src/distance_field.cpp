#include "twin/distance_field.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

namespace twin {

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

// Stencil directions in a fixed order: the 8 neighbours first (axial, then diagonal), then knight moves, then
// the (3,1) and (3,2) families. Bits of the per-cell mask follow this order.
const int kMoves[32][2] = {
    {1, 0}, {-1, 0}, {0, 1},  {0, -1}, {1, 1},   {-1, 1},  {1, -1}, {-1, -1},  // 8
    {2, 1}, {1, 2},  {-1, 2}, {-2, 1}, {-2, -1}, {-1, -2}, {1, -2}, {2, -1},   // 16
    {3, 1}, {1, 3},  {-1, 3}, {-3, 1}, {-3, -1}, {-1, -3}, {1, -3}, {3, -1},   // (3,1) family
    {3, 2}, {2, 3},  {-2, 3}, {-3, 2}, {-3, -2}, {-2, -3}, {2, -3}, {3, -2},   // (3,2) family
};

// The cells (relative to the start cell, excluding start and end) whose closed square the segment between the
// two centres touches. Exact: in doubled integer coordinates the segment runs from (0, 0) to (2dx, 2dy) and
// cell (i, j) is the square [2i-1, 2i+1] x [2j-1, 2j+1]; by the separating-axis theorem they meet iff their
// x and y ranges overlap and the square's corners are not all strictly on one side of the segment's line.
std::vector<std::pair<int, int>> swept_cells(int dx, int dy) {
    std::vector<std::pair<int, int>> cells;
    const long sx = 2L * dx, sy = 2L * dy;
    for (int j = std::min(0, dy) - 1; j <= std::max(0, dy) + 1; ++j) {
        for (int i = std::min(0, dx) - 1; i <= std::max(0, dx) + 1; ++i) {
            if ((i == 0 && j == 0) || (i == dx && j == dy)) continue;
            const long x_lo = 2L * i - 1, x_hi = 2L * i + 1, y_lo = 2L * j - 1, y_hi = 2L * j + 1;
            if (x_hi < std::min(0L, sx) || x_lo > std::max(0L, sx)) continue;
            if (y_hi < std::min(0L, sy) || y_lo > std::max(0L, sy)) continue;
            int pos = 0, neg = 0;
            for (long cx : {x_lo, x_hi}) {
                for (long cy : {y_lo, y_hi}) {
                    const long cross = sx * cy - sy * cx;
                    pos += cross > 0;
                    neg += cross < 0;
                }
            }
            if (pos == 4 || neg == 4) continue;
            cells.emplace_back(i, j);
        }
    }
    return cells;
}

std::string cell_str(int64_t l, int64_t iy, int64_t ix) {
    std::ostringstream s;
    s << "(" << l << ", " << iy << ", " << ix << ")";
    return s.str();
}

}  // namespace

DistanceField::DistanceField(int levels, int ny, int nx, double cell_size, std::vector<double> origins,
                             std::vector<uint8_t> walkable, std::vector<CellConnector> connectors,
                             int stencil)
    : levels_(levels),
      ny_(ny),
      nx_(nx),
      h_(cell_size),
      stencil_(stencil),
      origins_(std::move(origins)),
      walkable_(std::move(walkable)),
      connectors_(std::move(connectors)) {
    if (levels < 1 || ny < 1 || nx < 1) {
        throw std::invalid_argument("walkable must have at least one level, row and column, got (" +
                                    std::to_string(levels) + ", " + std::to_string(ny) + ", " +
                                    std::to_string(nx) + ")");
    }
    if (!(std::isfinite(cell_size) && cell_size > 0)) {
        throw std::invalid_argument("cell_size must be a finite number > 0, got " +
                                    std::to_string(cell_size));
    }
    if (stencil != 8 && stencil != 16 && stencil != 32) {
        throw std::invalid_argument("stencil must be 8, 16 or 32, got " + std::to_string(stencil));
    }
    if (origins_.size() != 2 * static_cast<std::size_t>(levels)) {
        throw std::invalid_argument("origins must hold (x0, y0) for each of the " + std::to_string(levels) +
                                    " levels");
    }
    for (std::size_t i = 0; i < origins_.size(); ++i) {
        if (!std::isfinite(origins_[i])) {
            throw std::invalid_argument("origins must be finite, level " + std::to_string(i / 2) + " is not");
        }
    }
    if (walkable_.size() != static_cast<std::size_t>(levels) * ny * nx) {
        throw std::invalid_argument("walkable must hold levels*ny*nx values");
    }
    for (auto& w : walkable_) w = w ? 1 : 0;

    // Moves and their swept cells.
    std::vector<std::vector<std::pair<int, int>>> swept;
    for (int k = 0; k < stencil; ++k) {
        move_dx_.push_back(kMoves[k][0]);
        move_dy_.push_back(kMoves[k][1]);
        move_len_.push_back(cell_size *
                            std::sqrt(double(kMoves[k][0] * kMoves[k][0] + kMoves[k][1] * kMoves[k][1])));
        swept.push_back(swept_cells(kMoves[k][0], kMoves[k][1]));
    }

    // Allowed-move mask per cell: the end cell and every swept cell inside the raster and walkable.
    allowed_.assign(walkable_.size(), 0u);
    const int64_t n_rows = static_cast<int64_t>(levels) * ny;
#pragma omp parallel for schedule(static)
    for (int64_t row = 0; row < n_rows; ++row) {
        const int iy = static_cast<int>(row % ny);
        const std::size_t base = static_cast<std::size_t>(row - iy) * nx;  // first cell of this level
        for (int ix = 0; ix < nx; ++ix) {
            const std::size_t c = static_cast<std::size_t>(row) * nx + ix;
            if (!walkable_[c]) continue;
            uint32_t mask = 0;
            for (int k = 0; k < stencil; ++k) {
                const int ex = ix + move_dx_[k], ey = iy + move_dy_[k];
                if (ex < 0 || ex >= nx || ey < 0 || ey >= ny) continue;
                if (!walkable_[base + static_cast<std::size_t>(ey) * nx + ex]) continue;
                bool ok = true;
                for (const auto& s : swept[k]) {
                    const int sx = ix + s.first, sy = iy + s.second;
                    if (sx < 0 || sx >= nx || sy < 0 || sy >= ny ||
                        !walkable_[base + static_cast<std::size_t>(sy) * nx + sx]) {
                        ok = false;
                        break;
                    }
                }
                if (ok) mask |= (1u << k);
            }
            allowed_[c] = mask;
        }
    }

    // Connectors: check, then CSR over cells with both directions.
    if (!connectors_.empty()) {
        std::vector<std::pair<int64_t, std::pair<int64_t, double>>> edges;
        edges.reserve(2 * connectors_.size());
        for (std::size_t i = 0; i < connectors_.size(); ++i) {
            const CellConnector& k = connectors_[i];
            const std::string name = "connectors[" + std::to_string(i) + "]";
            const int32_t ends[2][3] = {{k.level_a, k.iy_a, k.ix_a}, {k.level_b, k.iy_b, k.ix_b}};
            int64_t flat_end[2];
            for (int e = 0; e < 2; ++e) {
                const int32_t l = ends[e][0], iy = ends[e][1], ix = ends[e][2];
                const char* side = e == 0 ? "a" : "b";
                if (l < 0 || l >= levels || iy < 0 || iy >= ny || ix < 0 || ix >= nx) {
                    throw std::invalid_argument(name + ": cell " + side + " " + cell_str(l, iy, ix) +
                                                " is outside the raster of shape " +
                                                cell_str(levels, ny, nx));
                }
                flat_end[e] = static_cast<int64_t>(flat(l, iy, ix));
                if (!walkable_[flat_end[e]]) {
                    throw std::invalid_argument(name + ": cell " + side + " " + cell_str(l, iy, ix) +
                                                " is not walkable");
                }
            }
            if (!(std::isfinite(k.cost) && k.cost >= 0)) {
                throw std::invalid_argument(name + ": cost must be finite and >= 0, got " +
                                            std::to_string(k.cost));
            }
            edges.push_back({flat_end[0], {flat_end[1], k.cost}});
            edges.push_back({flat_end[1], {flat_end[0], k.cost}});
        }
        std::stable_sort(edges.begin(), edges.end(),
                         [](const auto& a, const auto& b) { return a.first < b.first; });
        conn_offsets_.assign(walkable_.size() + 1, 0);
        for (const auto& e : edges) ++conn_offsets_[e.first + 1];
        for (std::size_t i = 0; i < walkable_.size(); ++i) conn_offsets_[i + 1] += conn_offsets_[i];
        for (const auto& e : edges) {
            conn_to_.push_back(e.second.first);
            conn_cost_.push_back(e.second.second);
        }
    }
}

void DistanceField::check_targets(const int64_t* targets, std::size_t t, const double* initial) const {
    for (std::size_t i = 0; i < t; ++i) {
        const int64_t l = targets[3 * i], iy = targets[3 * i + 1], ix = targets[3 * i + 2];
        auto name = [&] { return "targets[" + std::to_string(i) + "] = " + cell_str(l, iy, ix); };
        if (l < 0 || l >= levels_ || iy < 0 || iy >= ny_ || ix < 0 || ix >= nx_) {
            throw std::invalid_argument(name() + " is outside the raster of shape " +
                                        cell_str(levels_, ny_, nx_));
        }
        if (!walkable_[flat(int(l), int(iy), int(ix))]) {
            throw std::invalid_argument(name() + " is not a walkable cell");
        }
        if (initial != nullptr && (std::isnan(initial[i]) || initial[i] == -kInf)) {
            throw std::invalid_argument("initial[" + std::to_string(i) + "] must be finite or +inf, got " +
                                        std::to_string(initial[i]));
        }
    }
}

void DistanceField::check_cost(const double* cost) const {
    const std::size_t n = walkable_.size();
    for (std::size_t c = 0; c < n; ++c) {
        if (!(std::isfinite(cost[c]) && cost[c] > 0)) {
            const int64_t ix = static_cast<int64_t>(c % nx_), iy = static_cast<int64_t>((c / nx_) % ny_);
            const int64_t l = static_cast<int64_t>(c / (static_cast<std::size_t>(nx_) * ny_));
            std::ostringstream s;
            s << "cost[" << l << ", " << iy << ", " << ix << "] must be a finite factor > 0, got " << cost[c];
            throw std::invalid_argument(s.str());
        }
    }
}

namespace {

// Min-heap (4-ary) of cells keyed by (dist[cell], cell) with decrease-key, so that each cell is in it at most
// once: Dijkstra pops every reached cell exactly once instead of wading through stale entries. The keys live
// in dist, which the caller lowers before calling push_or_decrease.
class CellHeap {
  public:
    CellHeap(const double* dist, std::size_t n) : dist_(dist), pos_(n, kNever) {}

    bool empty() const { return heap_.empty(); }
    bool settled(int64_t c) const { return pos_[c] == kSettled; }

    void push_or_decrease(int64_t c) {
        int64_t i = pos_[c];
        if (i < 0) {
            i = static_cast<int64_t>(heap_.size());
            heap_.push_back(c);
        }
        sift_up(i, c);
    }

    int64_t pop() {
        const int64_t top = heap_.front();
        pos_[top] = kSettled;
        const int64_t last = heap_.back();
        heap_.pop_back();
        if (!heap_.empty()) sift_down(0, last);
        return top;
    }

  private:
    static constexpr int64_t kNever = -1, kSettled = -2;

    bool less(int64_t a, int64_t b) const { return dist_[a] < dist_[b] || (dist_[a] == dist_[b] && a < b); }
    void place(int64_t i, int64_t c) {
        heap_[i] = c;
        pos_[c] = i;
    }
    void sift_up(int64_t i, int64_t c) {
        while (i > 0) {
            const int64_t parent = (i - 1) / 4;
            if (!less(c, heap_[parent])) break;
            place(i, heap_[parent]);
            i = parent;
        }
        place(i, c);
    }
    void sift_down(int64_t i, int64_t c) {
        const int64_t n = static_cast<int64_t>(heap_.size());
        while (true) {
            const int64_t first = 4 * i + 1;
            if (first >= n) break;
            int64_t best = first;
            const int64_t end = std::min(first + 4, n);
            for (int64_t j = first + 1; j < end; ++j) {
                if (less(heap_[j], heap_[best])) best = j;
            }
            if (!less(heap_[best], c)) break;
            place(i, heap_[best]);
            i = best;
        }
        place(i, c);
    }

    const double* dist_;
    std::vector<int64_t> pos_;   // position in heap_, or kNever / kSettled
    std::vector<int64_t> heap_;  // cells
};

// Dijkstra from seeded distances; with kCost each stencil move is scaled by the mean cost factor of its two
// cells (a template parameter so that the plain metric runs the loop without it). The distances do not depend
// on the order cells of equal distance are settled in: each is the minimum of its seed and, over its
// neighbours, of (their final distance + move cost), evaluated in the same floating-point operations.
template <bool kCost>
void dijkstra(const std::vector<int64_t>& seeds, CellHeap& heap, const std::vector<uint32_t>& allowed,
              const std::vector<int64_t>& move_off, const std::vector<double>& move_len,
              const std::vector<int64_t>& conn_offsets, const std::vector<int64_t>& conn_to,
              const std::vector<double>& conn_cost, const double* cost, double* out) {
    const bool has_conn = !conn_offsets.empty();
    // Calls f(v, distance through u) for each move and connector out of u.
    auto for_each_edge = [&](int64_t u, auto&& f) {
        const double du = out[u];
        uint32_t mask = allowed[u];
        while (mask) {
            const int k = __builtin_ctz(mask);
            mask &= mask - 1;
            const int64_t v = u + move_off[k];
            if constexpr (kCost) {
                if (!f(v, du + move_len[k] * (0.5 * (cost[u] + cost[v])))) return;
            } else {
                if (!f(v, du + move_len[k])) return;
            }
        }
        if (has_conn) {
            for (int64_t e = conn_offsets[u]; e < conn_offsets[u + 1]; ++e) {
                if (!f(conn_to[e], du + conn_cost[e])) return;
            }
        }
    };
    // A seed that cannot lower any neighbour's value stays out of the heap: values only fall, so relaxing
    // from it could never lower anything later either (with many seeds, e.g. a second pass seeded from a
    // whole field, most are such interior cells). It still enters the heap if something lowers its own value.
    for (const int64_t c : seeds) {
        bool improves = false;
        for_each_edge(c, [&](int64_t v, double nd) {
            improves = nd < out[v];
            return !improves;
        });
        if (improves) heap.push_or_decrease(c);
    }
    while (!heap.empty()) {
        const int64_t u = heap.pop();
        for_each_edge(u, [&](int64_t v, double nd) {
            if (nd < out[v]) {
                out[v] = nd;
                heap.push_or_decrease(v);
            }
            return true;
        });
    }
}

}  // namespace

void DistanceField::compute(const int64_t* targets, std::size_t t, const double* initial, double* out,
                            const double* cost) const {
    const std::size_t n = walkable_.size();
    std::fill(out, out + n, kInf);
    std::vector<int64_t> move_off(move_dx_.size());
    for (std::size_t k = 0; k < move_dx_.size(); ++k) move_off[k] = int64_t(move_dy_[k]) * nx_ + move_dx_[k];

    std::vector<int64_t> seeds;
    seeds.reserve(t);
    for (std::size_t i = 0; i < t; ++i) {
        const int64_t c =
            static_cast<int64_t>(flat(int(targets[3 * i]), int(targets[3 * i + 1]), int(targets[3 * i + 2])));
        const double d0 = initial != nullptr ? initial[i] : 0.0;
        if (d0 < out[c]) {
            out[c] = d0;
            seeds.push_back(c);
        }
    }
    CellHeap heap(out, n);
    if (cost == nullptr) {
        dijkstra<false>(seeds, heap, allowed_, move_off, move_len_, conn_offsets_, conn_to_, conn_cost_,
                        nullptr, out);
    } else {
        dijkstra<true>(seeds, heap, allowed_, move_off, move_len_, conn_offsets_, conn_to_, conn_cost_, cost,
                       out);
    }
}

bool DistanceField::locate(double x, double y, int level, int& iy, int& ix) const {
    if (!std::isfinite(x) || !std::isfinite(y)) return false;
    const double x0 = origins_[2 * level], y0 = origins_[2 * level + 1];
    const double u = (x - x0) / h_, v = (y - y0) / h_;
    if (!(u > -2.0 && u < nx_ + 2.0 && v > -2.0 && v < ny_ + 2.0)) return false;
    int i = static_cast<int>(std::floor(u)), j = static_cast<int>(std::floor(v));
    // Rounding of (x - x0) / h can be off by one next to a border: the borders are x0 + i*h as float64.
    if (x0 + (i + 1) * h_ <= x) {
        ++i;
    } else if (x0 + i * h_ > x) {
        --i;
    }
    if (y0 + (j + 1) * h_ <= y) {
        ++j;
    } else if (y0 + j * h_ > y) {
        --j;
    }
    if (i < 0 || i >= nx_ || j < 0 || j >= ny_) return false;
    iy = j;
    ix = i;
    return true;
}

void DistanceField::targets_from_points(const double* points, const int64_t* levels, std::size_t t,
                                        std::vector<int64_t>& targets, std::vector<double>& initial) const {
    targets.resize(3 * t);
    initial.resize(t);
    check_levels(levels, t, "levels");
    for (std::size_t i = 0; i < t; ++i) {
        const double x = points[2 * i], y = points[2 * i + 1];
        const int l = static_cast<int>(levels[i]);
        std::ostringstream name;
        name << "points[" << i << "] = (" << x << ", " << y << ") on level " << l;
        int iy = 0, ix = 0;
        if (!locate(x, y, l, iy, ix)) {
            throw std::invalid_argument(name.str() + " is outside the raster (or not finite)");
        }
        if (!walkable_[flat(l, iy, ix)]) {
            throw std::invalid_argument(name.str() + " lies in the non-walkable cell " + cell_str(l, iy, ix));
        }
        targets[3 * i] = l;
        targets[3 * i + 1] = iy;
        targets[3 * i + 2] = ix;
        const double cx = origins_[2 * l] + (ix + 0.5) * h_, cy = origins_[2 * l + 1] + (iy + 0.5) * h_;
        initial[i] = std::hypot(x - cx, y - cy);
    }
}

void DistanceField::check_levels(const int64_t* levels, std::size_t k, const char* name) const {
    for (std::size_t i = 0; i < k; ++i) {
        if (levels[i] < 0 || levels[i] >= levels_) {
            throw std::invalid_argument(std::string(name) + "[" + std::to_string(i) +
                                        "] = " + std::to_string(levels[i]) + " is not a level in [0, " +
                                        std::to_string(levels_) + ")");
        }
    }
}

void DistanceField::direction_at(const double* dist, std::size_t cell, double* d) const {
    d[0] = 0.0;
    d[1] = 0.0;
    const double dc = dist[cell];
    if (!walkable_[cell] || !std::isfinite(dc)) return;
    const int ix = static_cast<int>(cell % nx_);
    const int iy = static_cast<int>((cell / nx_) % ny_);
    // Axial neighbours that are outside the raster or not walkable count as +inf.
    auto at = [&](int dx, int dy) {
        const int x = ix + dx, y = iy + dy;
        if (x < 0 || x >= nx_ || y < 0 || y >= ny_) return kInf;
        const std::size_t c = cell + static_cast<std::ptrdiff_t>(dy) * nx_ + dx;
        return walkable_[c] ? dist[c] : kInf;
    };
    auto open = [&](int dx, int dy) {
        const int x = ix + dx, y = iy + dy;
        return x >= 0 && x < nx_ && y >= 0 && y < ny_ &&
               walkable_[cell + static_cast<std::ptrdiff_t>(dy) * nx_ + dx];
    };
    const double dl = at(-1, 0), dr = at(1, 0), dd = at(0, -1), du = at(0, 1);
    const double mx = std::min(dl, dr), my = std::min(dd, du);
    const int sx = mx < dc ? (dl <= dr ? -1 : 1) : 0;
    const int sy = my < dc ? (dd <= du ? -1 : 1) : 0;
    // Safe if every cell a short step in this quadrant can enter is walkable.
    const bool safe =
        (sx == 0 || open(sx, 0)) && (sy == 0 || open(0, sy)) && (sx == 0 || sy == 0 || open(sx, sy));
    if ((sx != 0 || sy != 0) && safe) {
        const double gx = sx * (dc - mx), gy = sy * (dc - my);
        const double norm = std::hypot(gx, gy);
        d[0] = gx / norm;
        d[1] = gy / norm;
        return;
    }
    const uint32_t mask = allowed_[cell] & 0xFFu;
    double best = 0.0;
    int kbest = -1;
    for (int k = 0; k < 8; ++k) {
        if (!(mask & (1u << k))) continue;
        const std::size_t v = cell + static_cast<std::ptrdiff_t>(move_dy_[k]) * nx_ + move_dx_[k];
        const double slope = (dc - dist[v]) / move_len_[k];
        if (slope > best) {
            best = slope;
            kbest = k;
        }
    }
    if (kbest >= 0) {
        const double len = std::hypot(double(move_dx_[kbest]), double(move_dy_[kbest]));
        d[0] = move_dx_[kbest] / len;
        d[1] = move_dy_[kbest] / len;
    }
}

void DistanceField::gradient(const double* dist, double* out) const {
    const int64_t n = static_cast<int64_t>(walkable_.size());
#pragma omp parallel for schedule(static)
    for (int64_t c = 0; c < n; ++c) direction_at(dist, static_cast<std::size_t>(c), out + 2 * c);
}

void DistanceField::sample(const double* dist, const double* points, const int64_t* levels, std::size_t k,
                           double* out) const {
    const int64_t kk = static_cast<int64_t>(k);
#pragma omp parallel for schedule(static)
    for (int64_t p = 0; p < kk; ++p) {
        const double x = points[2 * p], y = points[2 * p + 1];
        const int l = static_cast<int>(levels[p]);
        int iy = 0, ix = 0;
        if (!locate(x, y, l, iy, ix)) {
            out[p] = kInf;
            continue;
        }
        const double u = (x - origins_[2 * l]) / h_ - 0.5, v = (y - origins_[2 * l + 1]) / h_ - 0.5;
        const int i0 = static_cast<int>(std::floor(u)), j0 = static_cast<int>(std::floor(v));
        const double fx = u - i0, fy = v - j0;
        double val[4];
        bool all = true;
        for (int q = 0; q < 4; ++q) {
            const int i = i0 + (q & 1), j = j0 + (q >> 1);
            val[q] = (i >= 0 && i < nx_ && j >= 0 && j < ny_) ? dist[flat(l, j, i)] : kInf;
            all = all && std::isfinite(val[q]);
        }
        if (all) {
            out[p] = (1 - fy) * ((1 - fx) * val[0] + fx * val[1]) + fy * ((1 - fx) * val[2] + fx * val[3]);
            continue;
        }
        const double own = dist[flat(l, iy, ix)];
        if (std::isfinite(own)) {
            out[p] = own;
            continue;
        }
        double best = kInf, best_d2 = kInf;
        for (int q = 0; q < 4; ++q) {
            if (!std::isfinite(val[q])) continue;
            const double ex = fx - (q & 1), ey = fy - (q >> 1);
            const double d2 = ex * ex + ey * ey;
            if (d2 < best_d2) {
                best_d2 = d2;
                best = val[q];
            }
        }
        out[p] = best;
    }
}

void DistanceField::sample_direction(const double* dist, const double* points, const int64_t* levels,
                                     std::size_t k, double* out) const {
    const int64_t kk = static_cast<int64_t>(k);
#pragma omp parallel for schedule(static)
    for (int64_t p = 0; p < kk; ++p) {
        double* d = out + 2 * p;
        d[0] = 0.0;
        d[1] = 0.0;
        const double x = points[2 * p], y = points[2 * p + 1];
        const int l = static_cast<int>(levels[p]);
        int iy = 0, ix = 0;
        if (!locate(x, y, l, iy, ix)) continue;
        const std::size_t c = flat(l, iy, ix);
        if (std::isfinite(dist[c])) {
            direction_at(dist, c, d);
            continue;
        }
        // In a wall or unreachable cell: head for the centre of the nearest finite cell among the four
        // around.
        const double x0 = origins_[2 * l], y0 = origins_[2 * l + 1];
        const double u = (x - x0) / h_ - 0.5, v = (y - y0) / h_ - 0.5;
        const int i0 = static_cast<int>(std::floor(u)), j0 = static_cast<int>(std::floor(v));
        double best_d2 = kInf, tx = 0, ty = 0;
        for (int q = 0; q < 4; ++q) {
            const int i = i0 + (q & 1), j = j0 + (q >> 1);
            if (i < 0 || i >= nx_ || j < 0 || j >= ny_ || !std::isfinite(dist[flat(l, j, i)])) continue;
            const double cx = x0 + (i + 0.5) * h_, cy = y0 + (j + 0.5) * h_;
            const double d2 = (cx - x) * (cx - x) + (cy - y) * (cy - y);
            if (d2 < best_d2) {
                best_d2 = d2;
                tx = cx - x;
                ty = cy - y;
            }
        }
        const double norm = std::hypot(tx, ty);
        if (norm > 0) {
            d[0] = tx / norm;
            d[1] = ty / norm;
        }
    }
}

}  // namespace twin
