// Shortest walking distances to targets over walkable rasters of several storeys linked by stairs.
//
// Method: Dijkstra on an 8-, 16- or 32-neighbour stencil (axial and diagonal moves, knight moves (2,1), and
// with 32 also the (3,1) and (3,2) moves). A move costs cell_size * |(dx, dy)| (times (c_a + c_b) / 2 with an
// optional per-cell cost factor c, e.g. free speed / local speed for congestion-aware routing; connectors
// keep their own cost) and is allowed only if the
// straight segment between the two cell centres touches walkable cells only (its closed path through the
// squares of the cells it sweeps, so no corner cutting). In open space the stencil distance never
// underestimates the Euclidean distance between cell centres and overestimates it by at most (asymptotic and
// exact bound, because each pair of neighbouring stencil directions is a unimodular basis of the lattice):
//     8 neighbours: 8.24 %,  16 neighbours: 2.75 %,  32 neighbours: 1.31 %.
//
// Cell convention: cell (iy, ix) of level l spans [x0 + ix*h, x0 + (ix+1)*h) x [y0 + iy*h, y0 + (iy+1)*h)
// with (x0, y0) = origins[l] and h = cell_size; the borders are the float64 values x0 + ix*h as written.
// Its centre is (x0 + (ix+0.5)*h, y0 + (iy+0.5)*h).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace twin {

struct CellConnector {
    int32_t level_a, iy_a, ix_a;
    int32_t level_b, iy_b, ix_b;
    double cost;  // metres (or metres scaled by a speed ratio), >= 0
};

class DistanceField {
  public:
    // walkable: levels*ny*nx bytes (non-zero = walkable), row-major (level, iy, ix).
    // origins: 2*levels values (x0, y0) per level. stencil: 8, 16 or 32.
    // Throws std::invalid_argument naming the offending value.
    DistanceField(int levels, int ny, int nx, double cell_size, std::vector<double> origins,
                  std::vector<uint8_t> walkable, std::vector<CellConnector> connectors, int stencil);

    int levels() const { return levels_; }
    int ny() const { return ny_; }
    int nx() const { return nx_; }
    double cell_size() const { return h_; }
    int stencil() const { return stencil_; }
    std::size_t size() const { return walkable_.size(); }
    const std::vector<double>& origins() const { return origins_; }
    const std::vector<uint8_t>& walkable() const { return walkable_; }
    const std::vector<CellConnector>& connectors() const { return connectors_; }

    // Checks targets (t rows of level, iy, ix) and initial costs (may be null: all zero; +inf skips a
    // target). Throws std::invalid_argument naming the first bad target.
    void check_targets(const int64_t* targets, std::size_t t, const double* initial) const;

    // Checks a per-cell cost factor (size() values): every value finite and > 0. Throws std::invalid_argument
    // naming the first bad cell.
    void check_cost(const double* cost) const;

    // Multi-source shortest distances into out[size()] (inf where non-walkable or unreachable).
    // Call check_targets first (and check_cost). No targets: every cell is inf.
    // cost: null (every factor 1, the plain metric) or size() factors; a stencil move from cell a to cell b
    // then costs cell_size * |(dx, dy)| * (cost[a] + cost[b]) / 2, connectors their own cost.
    void compute(const int64_t* targets, std::size_t t, const double* initial, double* out,
                 const double* cost = nullptr) const;

    // The targets for point sources: the cell containing each point and, as initial cost, the distance from
    // the point to that cell's centre. Throws std::invalid_argument if a point is outside the raster,
    // non-finite, on a level out of range, or in a non-walkable cell.
    void targets_from_points(const double* points, const int64_t* levels, std::size_t t,
                             std::vector<int64_t>& targets, std::vector<double>& initial) const;

    // Unit descent direction per cell into out[2*size()] (dx, dy), see direction_at.
    void gradient(const double* dist, double* out) const;

    // For k points (x, y) on levels: bilinear distance where the four surrounding cell centres are all
    // finite, else the value of the nearest finite cell among those four (the containing cell first), inf
    // when none or when the point is outside the raster or non-finite. levels must be in range
    // (check_levels).
    void sample(const double* dist, const double* points, const int64_t* levels, std::size_t k,
                double* out) const;
    // Unit descent direction for k points: that of the containing cell; for a point in a non-walkable or
    // unreachable cell, the unit vector to the centre of the nearest finite cell among the four around it;
    // 0 if none or outside.
    void sample_direction(const double* dist, const double* points, const int64_t* levels, std::size_t k,
                          double* out) const;
    // Throws std::invalid_argument naming the first level out of range.
    void check_levels(const int64_t* levels, std::size_t k, const char* name) const;

    // The cell containing (x, y) on a level, by the convention above; false if outside or non-finite.
    bool locate(double x, double y, int level, int& iy, int& ix) const;

    // Unit descent direction of one cell (flat index), written to d[0], d[1]:
    //  * the upwind (Godunov) gradient: per axis, toward the lower walkable axial neighbour if it is lower
    //  than
    //    the cell, with slope (d_c - d_neighbour) / h; normalised. Used only if every cell a short step in
    //    that quadrant can enter is walkable (for a diagonal direction: both axial cells and the diagonal
    //    cell);
    //  * otherwise the allowed 8-neighbour move with the steepest descent per metre (first in a fixed order).
    // Either way a straight step shorter than cell_size from any point of the cell stays on walkable cells.
    // In open space the direction is the normal of the stencil norm's facet, within half the widest angle
    // between stencil directions of the true one (32: 9.2 deg, 16: 13.3 deg, 8: 22.5 deg).
    // 0 at targets (local minima), in non-walkable or unreachable cells, and at cells reached only through a
    // connector (the stair landing, where the crowd model moves agents through the connector).
    void direction_at(const double* dist, std::size_t cell, double* d) const;

  private:
    std::size_t flat(int level, int iy, int ix) const {
        return (static_cast<std::size_t>(level) * ny_ + iy) * nx_ + ix;
    }

    int levels_, ny_, nx_;
    double h_;
    int stencil_;
    std::vector<double> origins_;
    std::vector<uint8_t> walkable_;
    std::vector<CellConnector> connectors_;
    // Stencil moves: offsets, lengths in metres, and per cell a bit mask of the allowed moves.
    std::vector<int> move_dx_, move_dy_;
    std::vector<double> move_len_;
    std::vector<uint32_t> allowed_;
    // Connector edges in CSR form over cells (empty if there are no connectors).
    std::vector<int64_t> conn_offsets_;
    std::vector<int64_t> conn_to_;
    std::vector<double> conn_cost_;
};

}  // namespace twin
