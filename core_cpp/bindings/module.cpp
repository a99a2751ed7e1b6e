// The one extension module twin._core: each subsystem registers itself from its own binding file.
#include <pybind11/pybind11.h>

#include <stdexcept>
#include <string>

#ifdef TWIN_HAVE_OPENMP
#include <omp.h>
#endif

namespace py = pybind11;

void bind_mesh(py::module_& m);     // TriangleBVH (mesh.cpp)
void bind_spatial(py::module_& m);  // SegmentIndex2D, NeighborGrid (spatial.cpp)
void bind_nav(py::module_& m);      // DistanceField, Graph (nav.cpp)
void bind_crowd(py::module_& m);    // CrowdSim: social force and collision-free speed models (crowd.cpp)
void bind_traffic(py::module_& m);  // TrafficSim: IDM, lane changes, junctions and signals (traffic.cpp)

PYBIND11_MODULE(_core, m) {
    m.doc() = "twin C++17 core: spatial queries and hot loops over numpy arrays";
#ifdef TWIN_HAVE_OPENMP
    m.attr("has_openmp") = true;
#else
    m.attr("has_openmp") = false;
#endif
    m.def(
        "set_num_threads",
        [](int n) {
            if (n < 1) throw py::value_error("n must be >= 1, got " + std::to_string(n));
#ifdef TWIN_HAVE_OPENMP
            omp_set_num_threads(n);
#endif
        },
        py::arg("n"),
        "Set the number of threads the core uses for batched queries (results never depend on it).");
    m.def(
        "get_num_threads",
        []() {
#ifdef TWIN_HAVE_OPENMP
            return omp_get_max_threads();
#else
            return 1;
#endif
        },
        "Number of threads the core uses for batched queries.");
    bind_mesh(m);
    bind_spatial(m);
    bind_nav(m);
    bind_crowd(m);
    bind_traffic(m);
}
