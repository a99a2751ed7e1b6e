// The one extension module twin._core: each subsystem registers itself from its own binding file.
#include <pybind11/pybind11.h>

#include <stdexcept>

namespace py = pybind11;

void bind_mesh(py::module_& m);     // TriangleBVH (mesh.cpp)
void bind_spatial(py::module_& m);  // SegmentIndex2D, NeighborGrid (spatial.cpp)
void bind_nav(py::module_& m);      // DistanceField, Graph (nav.cpp)

PYBIND11_MODULE(_core, m) {
    m.doc() = "twin C++17 core: spatial queries and hot loops over numpy arrays";
#ifdef TWIN_HAVE_OPENMP
    m.attr("has_openmp") = true;
#else
    m.attr("has_openmp") = false;
#endif
    bind_mesh(m);
    bind_spatial(m);
    bind_nav(m);
}
