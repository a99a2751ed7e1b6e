// SegmentIndex2D: walls as 2-D segments, optionally per storey (level), in a bounding-volume hierarchy per
// level; nearest wall (distance, normal, closest point) and all walls within a radius for many points at
// once.
#pragma once

#include <cstdint>
#include <vector>

#include "twin/neighbor_grid.hpp"  // Buffer, CsrNeighbors

namespace twin {

class SegmentIndex2D {
  public:
    // `segments`: n rows [x0, y0, x1, y1] (finite, checked by the caller). `levels`: n storey ids, or nullptr
    // to put every segment on level 0. Zero-length segments are points.
    SegmentIndex2D(const double* segments, int64_t n, const int32_t* levels);

    // Nearest segment to each of k points (on the point's level if `levels` is given, else on any level).
    // Outputs: distance (k,), normal (k, 2) unit vector from the closest wall point towards the query point,
    // segment (k,), point (k, 2) closest wall point. Only segments at distance <= max_distance count; misses
    // give inf, (0, 0), -1, (NaN, NaN). Ties go to the lowest segment id. A point exactly on a segment gets
    // the segment's left-hand normal (-dy, dx)/|d|; exactly on a zero-length segment, (0, 0).
    void nearest(const double* points, int64_t k, const int32_t* levels, double max_distance,
                 double* distance, double* normal, int64_t* segment, double* point) const;

    // All segments within `radius` (distance <= radius) of each point, rows sorted by segment id.
    CsrNeighbors within(const double* points, int64_t k, double radius, const int32_t* levels) const;

    int64_t size() const { return n_; }
    // Distinct levels present, ascending.
    const std::vector<int32_t>& levels() const { return level_values_; }

    // Bounding-volume hierarchy over one set of segments (median split on the longer centroid axis, leaves of
    // at most 4). Node children of an inner node are nodes[first] and nodes[first + 1].
    struct Node {
        double lo[2], hi[2];
        int64_t first;  // leaf: first item; inner: left child
        int64_t count;  // leaf: number of items (> 0); inner: 0
    };
    struct Tree {
        std::vector<Node> nodes;
        std::vector<int64_t> ids;  // segment id of each item, in leaf order
        std::vector<double> segs;  // (items * 4) coordinates in leaf order
    };

  private:
    const Tree* tree_for(const int32_t* levels, int64_t i) const;

    int64_t n_ = 0;
    double max_abs_ = 0;
    std::vector<int32_t> level_values_;  // sorted distinct levels
    std::vector<int32_t> level_tree_;    // tree index of each level in level_values_
    std::vector<Tree> trees_;            // trees_[0]: all segments
};

}  // namespace twin
