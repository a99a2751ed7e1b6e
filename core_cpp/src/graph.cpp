#include "twin/graph.hpp"

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <queue>
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

namespace twin {

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

// node: internal id; id: node id, which breaks ties so that results do not depend on the internal order.
struct HeapItem {
    double key;
    int32_t node;
    int32_t id;
    bool operator>(const HeapItem& o) const { return key > o.key || (key == o.key && id > o.id); }
};

using MinHeap = std::priority_queue<HeapItem, std::vector<HeapItem>, std::greater<HeapItem>>;

std::string num(double v) {
    std::ostringstream s;
    s << v;
    return s.str();
}

}  // namespace

Graph::Graph(int64_t n_nodes, std::vector<int64_t> src, std::vector<int64_t> dst, std::vector<double> weight,
             std::vector<double> coords, int coord_dim, bool directed)
    : n_(n_nodes),
      directed_(directed),
      dim_(coord_dim),
      src_(std::move(src)),
      dst_(std::move(dst)),
      weight_(std::move(weight)),
      coords_(std::move(coords)) {
    if (n_nodes < 0 || n_nodes > std::numeric_limits<int32_t>::max()) {
        throw std::invalid_argument("n_nodes must be in [0, 2**31 - 1], got " + std::to_string(n_nodes));
    }
    if (src_.size() != dst_.size() || src_.size() != weight_.size()) {
        throw std::invalid_argument("src, dst and weight must have the same length");
    }
    if (coord_dim != 0 && coord_dim != 2 && coord_dim != 3) {
        throw std::invalid_argument("coords must have 2 or 3 columns, got " + std::to_string(coord_dim));
    }
    if (coords_.size() != static_cast<std::size_t>(n_nodes) * coord_dim) {
        throw std::invalid_argument("coords must have one row per node");
    }
    for (std::size_t i = 0; i < coords_.size(); ++i) {
        if (!std::isfinite(coords_[i])) {
            throw std::invalid_argument("coords must be finite, node " + std::to_string(i / coord_dim) +
                                        " is not");
        }
    }
    check_nodes(src_.data(), src_.size(), "src");
    check_nodes(dst_.data(), dst_.size(), "dst");

    // Breadth-first renumbering over the undirected connectivity, from the lowest unvisited node id.
    const std::size_t m = src_.size();
    const std::size_t nn = static_cast<std::size_t>(n_);
    {
        std::vector<int64_t> off(nn + 1, 0);
        for (std::size_t e = 0; e < m; ++e) {
            ++off[src_[e] + 1];
            ++off[dst_[e] + 1];
        }
        for (std::size_t u = 0; u < nn; ++u) off[u + 1] += off[u];
        std::vector<int32_t> nb(2 * m);
        std::vector<int64_t> pos(off.begin(), off.end() - 1);
        for (std::size_t e = 0; e < m; ++e) {
            nb[pos[src_[e]]++] = static_cast<int32_t>(dst_[e]);
            nb[pos[dst_[e]]++] = static_cast<int32_t>(src_[e]);
        }
        perm_.clear();
        perm_.reserve(nn);
        inv_.assign(nn, -1);
        for (std::size_t root = 0; root < nn; ++root) {
            if (inv_[root] >= 0) continue;
            std::size_t head = perm_.size();
            inv_[root] = static_cast<int32_t>(perm_.size());
            perm_.push_back(static_cast<int32_t>(root));
            while (head < perm_.size()) {
                const int32_t u = perm_[head++];
                for (int64_t k = off[u]; k < off[u + 1]; ++k) {
                    const int32_t v = nb[k];
                    if (inv_[v] < 0) {
                        inv_[v] = static_cast<int32_t>(perm_.size());
                        perm_.push_back(v);
                    }
                }
            }
        }
    }
    if (dim_ > 0) {
        icoords_.resize(coords_.size());
        for (std::size_t u = 0; u < nn; ++u) {
            for (int k = 0; k < dim_; ++k)
                icoords_[u * dim_ + k] = coords_[static_cast<std::size_t>(perm_[u]) * dim_ + k];
        }
    }

    // CSR over internal ids by a stable counting sort on the source node.
    const std::size_t entries = directed_ ? m : 2 * m;
    offsets_.assign(nn + 1, 0);
    for (std::size_t e = 0; e < m; ++e) {
        ++offsets_[inv_[src_[e]] + 1];
        if (!directed_) ++offsets_[inv_[dst_[e]] + 1];
    }
    for (std::size_t u = 0; u < nn; ++u) offsets_[u + 1] += offsets_[u];
    adj_.resize(entries);
    edge_.resize(entries);
    std::vector<int64_t> fill(offsets_.begin(), offsets_.end() - 1);
    for (std::size_t e = 0; e < m; ++e) {
        const int32_t a = inv_[src_[e]], b = inv_[dst_[e]];
        int64_t p = fill[a]++;
        adj_[p] = b;
        edge_[p] = static_cast<int64_t>(e);
        if (!directed_) {
            p = fill[b]++;
            adj_[p] = a;
            edge_[p] = static_cast<int64_t>(e);
        }
    }
    build_weights();
}

void Graph::build_weights() {
    for (std::size_t e = 0; e < weight_.size(); ++e) {
        const double w = weight_[e];
        if (std::isnan(w) || w < 0) {
            throw std::invalid_argument("weight[" + std::to_string(e) +
                                        "] must be >= 0 (inf closes the edge), got " + num(w) + " on edge " +
                                        std::to_string(e) + " (" + std::to_string(src_[e]) + " -> " +
                                        std::to_string(dst_[e]) + ")");
        }
    }
    w_.resize(edge_.size());
    for (std::size_t p = 0; p < edge_.size(); ++p) w_[p] = weight_[edge_[p]];
    max_scale_ = kInf;
    max_scale_edge_ = -1;
    if (dim_ > 0) {
        for (std::size_t e = 0; e < weight_.size(); ++e) {
            const double len = straight(src_[e], dst_[e]);
            if (len > 0 && std::isfinite(weight_[e]) && weight_[e] / len < max_scale_) {
                max_scale_ = weight_[e] / len;
                max_scale_edge_ = static_cast<int64_t>(e);
            }
        }
    }
}

Graph Graph::with_weights(std::vector<double> weight) const {
    if (weight.size() != weight_.size()) {
        throw std::invalid_argument("weight must have one value per edge (" + std::to_string(weight_.size()) +
                                    "), got " + std::to_string(weight.size()));
    }
    Graph g;
    g.n_ = n_;
    g.directed_ = directed_;
    g.dim_ = dim_;
    g.src_ = src_;
    g.dst_ = dst_;
    g.weight_ = std::move(weight);
    g.coords_ = coords_;
    g.perm_ = perm_;
    g.inv_ = inv_;
    g.icoords_ = icoords_;
    g.offsets_ = offsets_;
    g.adj_ = adj_;
    g.edge_ = edge_;
    g.build_weights();
    return g;
}

double Graph::straight(int64_t a, int64_t b) const {
    double s = 0;
    for (int k = 0; k < dim_; ++k) {
        const double d = coords_[a * dim_ + k] - coords_[b * dim_ + k];
        s += d * d;
    }
    return std::sqrt(s);
}

double Graph::istraight(int32_t a, int32_t b) const {
    double s = 0;
    for (int k = 0; k < dim_; ++k) {
        const double d = icoords_[static_cast<std::size_t>(a) * dim_ + k] -
                         icoords_[static_cast<std::size_t>(b) * dim_ + k];
        s += d * d;
    }
    return std::sqrt(s);
}

void Graph::check_nodes(const int64_t* nodes, std::size_t k, const char* name) const {
    for (std::size_t i = 0; i < k; ++i) {
        if (nodes[i] < 0 || nodes[i] >= n_) {
            throw std::invalid_argument(std::string(name) + "[" + std::to_string(i) +
                                        "] = " + std::to_string(nodes[i]) + " is not a node in [0, " +
                                        std::to_string(n_) + ")");
        }
    }
}

void Graph::dijkstra(const int64_t* sources, std::size_t s, double limit, double* dist, int64_t* pred) const {
    const int64_t ns = static_cast<int64_t>(s);
    const std::size_t n = static_cast<std::size_t>(n_);
#pragma omp parallel
    {
        std::vector<double> d(n);
        std::vector<int32_t> p(n);
        std::vector<uint8_t> settled(n);
#pragma omp for schedule(dynamic, 1)
        for (int64_t i = 0; i < ns; ++i) {
            std::fill(d.begin(), d.end(), kInf);
            std::fill(p.begin(), p.end(), int32_t(-1));
            std::fill(settled.begin(), settled.end(), uint8_t(0));
            MinHeap heap;
            const int32_t src = inv_[sources[i]];
            d[src] = 0.0;
            heap.push({0.0, src, perm_[src]});
            while (!heap.empty()) {
                const HeapItem top = heap.top();
                heap.pop();
                const int32_t u = top.node;
                if (settled[u] || top.key > d[u]) continue;
                settled[u] = 1;
                for (int64_t e = offsets_[u]; e < offsets_[u + 1]; ++e) {
                    const int32_t v = adj_[e];
                    const double nd = top.key + w_[e];
                    if (!(nd <= limit) || nd == kInf) continue;
                    if (nd < d[v]) {
                        d[v] = nd;
                        p[v] = u;
                        heap.push({nd, v, perm_[v]});
                    } else if (nd == d[v] && !settled[v] && p[v] >= 0 && top.id < perm_[p[v]]) {
                        p[v] = u;  // equal offer from a lower node id
                    }
                }
            }
            double* drow = dist + static_cast<std::size_t>(i) * n;
            int64_t* prow = pred + static_cast<std::size_t>(i) * n;
            for (std::size_t v = 0; v < n; ++v) {
                const int32_t k = inv_[v];
                drow[v] = d[k];
                prow[v] = p[k] < 0 ? int64_t(-1) : int64_t(perm_[p[k]]);
            }
        }
    }
}

double Graph::shortest_path(int64_t source, int64_t target, bool astar, double heuristic_scale,
                            std::vector<int64_t>& path) const {
    path.clear();
    check_nodes(&source, 1, "source");
    check_nodes(&target, 1, "target");
    const bool use_h = astar && dim_ > 0;
    if (use_h) {
        if (!(std::isfinite(heuristic_scale) && heuristic_scale >= 0)) {
            throw std::invalid_argument("heuristic_scale must be finite and >= 0, got " +
                                        num(heuristic_scale));
        }
        // Allow float rounding of weights computed as straight-line lengths (relative 1e-9).
        if (heuristic_scale > max_scale_ * (1.0 + 1e-9)) {
            const int64_t e = max_scale_edge_;
            throw std::invalid_argument(
                "heuristic_scale " + num(heuristic_scale) + " is not admissible: edge " + std::to_string(e) +
                " (" + std::to_string(src_[e]) + " -> " + std::to_string(dst_[e]) + ") has weight " +
                num(weight_[e]) + " < heuristic_scale * straight-line length " +
                num(straight(src_[e], dst_[e])) + "; use heuristic_scale <= " + num(max_scale_) +
                " (e.g. 1 / max speed for travel times)");
        }
    }
    const std::size_t n = static_cast<std::size_t>(n_);
    const int32_t is = inv_[source], it = inv_[target];
    std::vector<double> g(n, kInf);
    std::vector<int32_t> pred(n, -1);
    auto h = [&](int32_t v) { return use_h ? heuristic_scale * istraight(v, it) : 0.0; };
    // Heap keys are g + h; an entry is stale when the node's g has improved since it was pushed. Nodes may be
    // reopened, so the result stays exact even if rounding makes the heuristic marginally inconsistent.
    struct Item {
        double f, g;
        int32_t node, id;
        bool operator>(const Item& o) const { return f > o.f || (f == o.f && id > o.id); }
    };
    std::priority_queue<Item, std::vector<Item>, std::greater<Item>> heap;
    g[is] = 0.0;
    heap.push({h(is), 0.0, is, perm_[is]});
    while (!heap.empty()) {
        const Item top = heap.top();
        heap.pop();
        const int32_t u = top.node;
        if (top.g > g[u]) continue;
        if (u == it) break;
        for (int64_t e = offsets_[u]; e < offsets_[u + 1]; ++e) {
            const int32_t v = adj_[e];
            const double ng = top.g + w_[e];
            if (ng < g[v]) {
                g[v] = ng;
                pred[v] = u;
                heap.push({ng + h(v), ng, v, perm_[v]});
            }
        }
    }
    if (!std::isfinite(g[it])) return kInf;
    for (int32_t v = it; v != -1; v = pred[v]) {
        path.push_back(perm_[v]);
        if (v == is) break;
    }
    std::reverse(path.begin(), path.end());
    return g[it];
}

void Graph::many_to_many(const int64_t* sources, std::size_t s, const int64_t* targets, std::size_t t,
                         double* out) const {
    const std::size_t n = static_cast<std::size_t>(n_);
    std::vector<uint8_t> is_target(n, 0);
    int64_t distinct = 0;
    for (std::size_t j = 0; j < t; ++j) {
        const int32_t k = inv_[targets[j]];
        if (!is_target[k]) {
            is_target[k] = 1;
            ++distinct;
        }
    }
    const int64_t ns = static_cast<int64_t>(s);
#pragma omp parallel
    {
        std::vector<double> d(n);
        std::vector<uint8_t> settled(n);
#pragma omp for schedule(dynamic, 1)
        for (int64_t i = 0; i < ns; ++i) {
            std::fill(d.begin(), d.end(), kInf);
            std::fill(settled.begin(), settled.end(), uint8_t(0));
            MinHeap heap;
            const int32_t src = inv_[sources[i]];
            d[src] = 0.0;
            heap.push({0.0, src, perm_[src]});
            int64_t remaining = distinct;
            while (!heap.empty() && remaining > 0) {
                const HeapItem top = heap.top();
                heap.pop();
                const int32_t u = top.node;
                if (settled[u] || top.key > d[u]) continue;
                settled[u] = 1;
                if (is_target[u]) --remaining;
                for (int64_t e = offsets_[u]; e < offsets_[u + 1]; ++e) {
                    const int32_t v = adj_[e];
                    const double nd = top.key + w_[e];
                    if (nd < d[v]) {
                        d[v] = nd;
                        heap.push({nd, v, perm_[v]});
                    }
                }
            }
            double* row = out + static_cast<std::size_t>(i) * t;
            for (std::size_t j = 0; j < t; ++j) {
                const int32_t k = inv_[targets[j]];
                row[j] = settled[k] ? d[k] : kInf;
            }
        }
    }
}

}  // namespace twin
