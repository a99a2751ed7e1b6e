// TriangleBVH: a bounding volume hierarchy over a triangle mesh for batched ray casts (first hit), any-hit
// occlusion between point pairs (line of sight) and closest points on the mesh.
//
// Build: a binary tree, top-down with a binned surface area heuristic (32 bins per axis, OpenMP tasks for
// large subtrees, 32-byte nodes), is collapsed into a 4-wide tree whose nodes hold their four children's
// boxes as float rows, so that one SIMD slab test checks all four. Triangles are copied into leaf order
// (three float64 vertices each, at most 8 per leaf, plus a float copy: 108 bytes per triangle in all);
// zero-area triangles are left out. Boxes are stored relative to the mesh centre and padded outward, and
// every query pads them again by its own rounding bound, so float rounding never culls a hit.
//
// Queries: ray/triangle tests use the watertight algorithm of Woop, Benthin and Wald (JCGT 2013) in float64,
// so a ray through an edge or vertex shared by two triangles hits at least one of them. Each thread keeps
// 16 rays in flight and prefetches the node or leaf each one needs next, so that cache misses overlap.
// First-hit rays visit children nearest first; closest points prune by squared distance to boxes. Shadow
// rays (occluded) stop at the first hit, visit children in stored order without branches, and test
// triangles first in float on the float copy (half the memory traffic) with a bound on the rounding error,
// falling back to the float64 test whenever rounding could change its answer: their answers are the
// float64 test's. Every query is independent and ties are broken by the lower
// triangle id, so no result depends on the traversal order or the number of threads.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace twin {

// A child of a 4-wide node: an interior node (count == 0, child = node index), a leaf (count > 0 triangles
// from child in leaf order) or empty (child == -1).
struct Bvh4Ref {
    int32_t child;
    int32_t count;
};

// One node of the 4-wide tree: 128 bytes, two cache lines. Rows of `box` are lo x, lo y, lo z, hi x, hi y,
// hi z of the four children (relative to the mesh centre; an empty child has lo = +inf, hi = -inf).
struct alignas(64) Bvh4Node {
    float box[6][4];
    Bvh4Ref ref[4];
};
static_assert(sizeof(Bvh4Node) == 128, "Bvh4Node must be 128 bytes");

// Allocator for the large arrays of the tree: 2 MiB aligned and, on Linux, backed by transparent huge pages
// where the system allows it (random access over ~100 MB of nodes and triangles is otherwise bound by TLB
// misses).
template <typename T>
struct HugePageAllocator {
    using value_type = T;
    HugePageAllocator() = default;
    template <typename U>
    HugePageAllocator(const HugePageAllocator<U>&) {}
    T* allocate(std::size_t n);
    void deallocate(T* p, std::size_t n) noexcept;
    template <typename U>
    bool operator==(const HugePageAllocator<U>&) const {
        return true;
    }
    template <typename U>
    bool operator!=(const HugePageAllocator<U>&) const {
        return false;
    }
};

void* huge_page_alloc(std::size_t bytes);
void huge_page_free(void* p, std::size_t bytes) noexcept;

template <typename T>
T* HugePageAllocator<T>::allocate(std::size_t n) {
    return static_cast<T*>(huge_page_alloc(n * sizeof(T)));
}
template <typename T>
void HugePageAllocator<T>::deallocate(T* p, std::size_t n) noexcept {
    huge_page_free(p, n * sizeof(T));
}

using Bvh4NodeVector = std::vector<Bvh4Node, HugePageAllocator<Bvh4Node>>;

struct BvhStats {
    std::size_t n_binary_nodes = 0;  // nodes of the binary SAH tree (root included)
    std::size_t n_nodes = 0;         // nodes of the 4-wide tree
    std::size_t n_leaves = 0;        // leaves (at most 8 triangles each)
    int depth = 0;                   // longest root-to-leaf path of the 4-wide tree, in nodes
    double build_seconds = 0;        // wall time of the build
};

class TriangleBVH {
  public:
    // vertices: n_vertices x 3 float64 (row-major, finite); triangles: n_triangles x 3 vertex indices.
    // Throws std::invalid_argument naming the first out-of-range index. Triangles with zero area (exactly
    // collinear or repeated vertices) are kept in the numbering but never reported by any query.
    TriangleBVH(const double* vertices, std::size_t n_vertices, const int64_t* triangles,
                std::size_t n_triangles);

    // First hit of each ray o + t d with tmin <= t <= tmax (t in units of |d|; 0 <= tmin <= tmax, tmax may
    // be inf; d nonzero). Outputs per ray: t (inf on a miss), triangle id (-1), unit geometric normal
    // facing against d and hit point (both NaN on a miss). normal and point are n x 3 and may be null.
    void cast_rays(const double* origins, const double* directions, std::size_t n, double tmin, double tmax,
                   double* t, int64_t* triangle, double* normal, double* point) const;

    // out[i] = 1 if some triangle crosses the open segment a[i] -> b[i], i.e. is hit at a segment parameter
    // s in [eps, 1 - eps]; a zero-length segment is never occluded. Stops at the first hit found.
    void occluded(const double* a, const double* b, std::size_t n, double eps, uint8_t* out) const;

    // Closest point on the mesh to each query point: point (n x 3), triangle id and Euclidean distance;
    // an empty mesh gives NaN points, -1 and inf.
    void closest_points(const double* points, std::size_t n, double* closest, int64_t* triangle,
                        double* distance) const;

    std::size_t n_triangles() const { return n_triangles_; }
    std::size_t n_vertices() const { return n_vertices_; }
    // Axis-aligned box of all triangle vertices: lo then hi (lo = +inf, hi = -inf for an empty mesh).
    const double* bounds() const { return bounds_; }
    const BvhStats& stats() const { return stats_; }

  private:
    void build(const double* vertices, const int64_t* triangles);

    std::size_t n_vertices_ = 0;
    std::size_t n_triangles_ = 0;
    double bounds_[6];
    // Boxes are stored as (coordinate - centre_) * unit_ in float, unit_ a power of two that brings the mesh
    // into [-1, 1]: float range and precision then hold for any mesh scale.
    double centre_[3] = {0, 0, 0};
    double unit_ = 1;    // box units per metre
    double extent_ = 0;  // largest |coordinate - centre| of the mesh, in box units (<= 1)
    // node 0 is the root; empty for a mesh without (non-degenerate) triangles
    Bvh4NodeVector nodes_;
    std::vector<double, HugePageAllocator<double>>
        tri_v_;  // 9 float64 per triangle in leaf order: v0, v1, v2
    // the same in float, box units relative to centre_, as rows (x of v0 v1 v2, y ..., z ...): a filter in
    // front of the float64 test for shadow rays; 4 floats of padding at the end
    std::vector<float, HugePageAllocator<float>> tri_f_;
    std::vector<int64_t> tri_id_;  // original triangle id per leaf-order triangle
    BvhStats stats_;
};

}  // namespace twin
