// Weighted graph in CSR form for road, pipe and building-connectivity networks: Dijkstra, A*, many-to-many.
//
// Edges are (src, dst, weight >= 0); weight +inf closes an edge. Multi-edges and self-loops are allowed.
// An undirected graph stores each edge in both directions. The graph is immutable once built (with_weights
// returns a new one), so queries may run concurrently.
//
// Determinism: each single-source search settles nodes in increasing (distance, node id) order, and the
// predecessor of a node is, among the settled nodes that offer its final distance before it is settled, the
// one with the lowest id. Results never depend on the thread count.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace twin {

class Graph {
  public:
    // coords: n_nodes * coord_dim values (coord_dim 0: none, 2 or 3). Throws std::invalid_argument naming the
    // first bad edge or node.
    Graph(int64_t n_nodes, std::vector<int64_t> src, std::vector<int64_t> dst, std::vector<double> weight,
          std::vector<double> coords, int coord_dim, bool directed);

    // The same topology and coordinates with new weights (one per edge, same rules).
    Graph with_weights(std::vector<double> weight) const;

    int64_t n_nodes() const { return n_; }
    int64_t n_edges() const { return static_cast<int64_t>(src_.size()); }
    bool directed() const { return directed_; }
    int coord_dim() const { return dim_; }
    const std::vector<int64_t>& src() const { return src_; }
    const std::vector<int64_t>& dst() const { return dst_; }
    const std::vector<double>& weights() const { return weight_; }
    const std::vector<double>& coords() const { return coords_; }

    // The largest heuristic_scale for which scale * straight-line distance is a consistent A* heuristic:
    // min over finite-weight edges of positive length of weight / length (+inf if none or no coords).
    double max_heuristic_scale() const { return max_scale_; }

    // Throws std::invalid_argument if a node id is out of range: "<name>[i] = 12 is not a node in [0, 10)".
    void check_nodes(const int64_t* nodes, std::size_t k, const char* name) const;

    // Single-source shortest paths from each of s sources into dist[s*n] and pred[s*n] (-1: none). Nodes
    // farther than limit get inf and -1. Parallel over sources.
    void dijkstra(const int64_t* sources, std::size_t s, double limit, double* dist, int64_t* pred) const;

    // Shortest path source -> target: returns its length (inf if unreachable) and fills path with the nodes
    // from source to target (empty if unreachable). astar uses heuristic_scale * straight-line distance to
    // the target (needs coords; without coords it is plain Dijkstra). Throws std::invalid_argument if
    // heuristic_scale is not in [0, max_heuristic_scale()] (an inadmissible heuristic would give wrong
    // paths).
    double shortest_path(int64_t source, int64_t target, bool astar, double heuristic_scale,
                         std::vector<int64_t>& path) const;

    // Distances from each source to each target into out[s*t]; each search stops once all targets are
    // settled. Parallel over sources.
    void many_to_many(const int64_t* sources, std::size_t s, const int64_t* targets, std::size_t t,
                      double* out) const;

  private:
    Graph() = default;
    void build_weights();
    double straight(int64_t a, int64_t b) const;
    double istraight(int32_t a, int32_t b) const;

    int64_t n_ = 0;
    bool directed_ = true;
    int dim_ = 0;
    std::vector<int64_t> src_, dst_;
    std::vector<double> weight_, coords_;
    // Internally nodes are renumbered in breadth-first order (memory locality: about 2x faster searches on
    // graphs whose ids are scattered); perm_[internal] = node id, inv_[node id] = internal. Ties are still
    // broken by node id, so results are as if no renumbering happened.
    std::vector<int32_t> perm_, inv_;
    std::vector<double> icoords_;  // coords in internal order
    // CSR over internal ids: offsets_[u]..offsets_[u+1] index adj_ (neighbour), edge_ (edge index), w_
    // (weight).
    std::vector<int64_t> offsets_;
    std::vector<int32_t> adj_;
    std::vector<int64_t> edge_;
    std::vector<double> w_;
    double max_scale_ = 0;
    int64_t max_scale_edge_ = -1;
};

}  // namespace twin
