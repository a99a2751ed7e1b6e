// NeighborGrid: a uniform grid over points in 2-D or 3-D, rebuilt in O(N) by a counting sort, answering
// radius and k-nearest queries in batches. Plain C++17; positions are float64 metres, rows of `dim` values.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <memory>
#include <vector>

namespace twin {

// Raw storage for large results: not zero-initialised (results are written once; zeroing would cost an extra
// pass) and, on Linux, backed by transparent huge pages when large (results are written in scattered rows,
// and 4 KiB pages would make every row a TLB miss). Release with std::free.
void* allocate_large(size_t bytes);

struct FreeDeleter {
    void operator()(void* p) const { std::free(p); }
};

template <typename T>
struct Buffer {
    std::unique_ptr<T[], FreeDeleter> data;
    int64_t size = 0;
    void allocate(int64_t n) {
        data.reset(static_cast<T*>(allocate_large(sizeof(T) * static_cast<size_t>(n > 0 ? n : 1))));
        size = n;
    }
};

// Compressed rows: row q holds entries offsets[q] .. offsets[q+1]-1.
struct CsrNeighbors {
    Buffer<int64_t> offsets;   // (rows + 1,)
    Buffer<int64_t> indices;   // (nnz,)
    Buffer<double> distances;  // (nnz,)
};

struct KNearest {
    Buffer<int64_t> indices;   // (rows * k,), -1 padding
    Buffer<double> distances;  // (rows * k,), +inf padding
};

// Uniform grid over n points in `dim` (2 or 3) dimensions.
//
// Cells: the grid spans the points' bounding box with cubic cells of `cell_size`. When the box would need
// more than min(4 n + 1024, 2^26) cells (a huge spread or a tiny cell), the grid switches to spatial hashing:
// the same cells, but a cell's points live in bucket hash(cell) of a table of the next power of two >= 2 n
// buckets, so memory stays O(n). In hashed mode cells never exceed 2^40 per axis (the cell is made coarser if
// needed). A query that would visit more cells than 4 n + 64 scans all points instead (same answer, bounded
// cost), and coordinates spread beyond the float range (extent > ~1.8e308) put every point in one cell.
//
// Points are stored sorted by cell (stable: by original index within a cell), so results never depend on the
// number of threads. All queries are const and may run concurrently; rebuild must not overlap a query.
class NeighborGrid {
  public:
    NeighborGrid(double cell_size, int dim);  // throws std::invalid_argument

    // Re-index `n` points (row-major n x dim). O(n + cells). Values must be finite (checked by the caller).
    void rebuild(const double* points, int64_t n);

    // All indexed points within `radius` (distance <= radius) of each of `k` queries. Rows sorted by
    // (distance, index) if `sort`, else in scan order. `exclude_self` skips index q for query q (queries are
    // the points).
    CsrNeighbors query_radius(const double* queries, int64_t k, double radius, bool exclude_self,
                              bool sort) const;

    // The `kn` nearest indexed points of each query, sorted by (distance, index); -1 / inf padding.
    KNearest query_knn(const double* queries, int64_t k, int64_t kn, bool exclude_self) const;

    // All unordered pairs i < j of indexed points within `radius`, as (p, 2) row-major, sorted by (i, j).
    Buffer<int64_t> pairs_within(double radius) const;

    // Original indices of the indexed points in the cells overlapping the box [q - r, q + r] (a superset of
    // the points within r), in sorted (cell, index) order, written to out[0 .. min(count, cap)), and, if
    // `points` is given, their coordinates to points[0 .. dim * min(count, cap)) (read in storage order, so
    // faster than looking them up by index). Returns the count, which may exceed cap (then only the first cap
    // were written). Allocation-free, for hot loops that filter the candidates themselves (the crowd models).
    int64_t candidates(const double* q, double r, int64_t* out, int64_t cap, double* points = nullptr) const;

    // Original index of each indexed point in storage order (sorted by cell): (size(),), valid until rebuild.
    const int64_t* sorted_ids() const { return ids_.data(); }

    int dim() const { return dim_; }
    double cell_size() const { return cell_size_; }
    double effective_cell_size() const { return cs_; }
    int64_t size() const { return n_; }
    bool hashed() const { return hashed_; }
    int64_t bucket_count() const { return buckets_; }

    // Internal views used by the query kernels.
    struct View;

  private:
    template <int D>
    void rebuild_impl(const double* points);

    int dim_;
    double cell_size_;
    double cs_ = 1.0, inv_cs_ = 1.0;
    int64_t n_ = 0;
    double origin_[3] = {0, 0, 0};
    int64_t cells_[3] = {0, 0, 0};  // cells per axis
    double max_abs_ = 0.0;          // largest |coordinate| of the indexed points (for rounding slack)
    bool hashed_ = false;
    int64_t buckets_ = 0;         // dense: product of cells_; hashed: table size (a power of two)
    std::vector<int64_t> start_;  // (buckets + 1,) first sorted position of each bucket
    std::vector<double> pts_;     // (n * dim,) points sorted by bucket
    std::vector<int64_t> ids_;    // (n,) original index of each sorted point
    std::vector<uint32_t> key_;   // scratch: bucket of each input point
    std::vector<uint32_t> hist_;  // scratch: per-thread bucket counts, then write cursors
};

}  // namespace twin
