"""``CityScene``: a PyVista scene built from a :class:`~twin.city.City`: terrain, buildings per storey, pipes,
roads, city models, moving point clouds and hazard overlays, with toggles, styles and camera presets.

Every layer is made once; what changes in time (agents, vehicles, smoke per space, closed roads, pipe colours)
is written into the existing arrays of its mesh (:class:`PointCloud`, :meth:`CityScene.set_smoke`…), never by
rebuilding actors, so playback of 100,000 points stays cheap.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyvista as pv
from vtkmodules.util.numpy_support import numpy_to_vtk
from vtkmodules.util.vtkConstants import VTK_ID_TYPE
from vtkmodules.vtkCommonCore import vtkIdTypeArray
from vtkmodules.vtkCommonDataModel import vtkCellArray, vtkPlane

from twin.errors import InputError
from twin.viewer import geometry

log = logging.getLogger(__name__)

PRESETS = ("overview", "building", "street")
"""Camera presets of :meth:`CityScene.set_camera`."""

COLORS = {
    "terrain": "#c9bfa5",
    "walls": "#e8e4dc",
    "slabs": "#9c9a96",
    "doors": "#8b5a2b",
    "stairs": "#e0a040",
    "windows": "#9fc5e8",
    "citymodel": "#d9d4cc",
    "road": "#5b5b5b",
    "road_closed": "#d62728",
    "gas": "#f1e04b",
    "background": "#f4f6f8",
}
AGENT_COLORS = ("#1f77b4", "#2ca02c", "#ff7f0e", "#7f7f7f", "#9467bd")
"""Colours of the crowd states waiting, walking, on_stair, evacuated, other (:data:`frames.AGENT_STATES`)."""

PIPE_ATTRIBUTES = {"diameter": "pipe diameter (m)", "pressure": "min. pressure (m)", "flow": "flow (m³/s)"}


@dataclass
class Layer:
    """One toggleable layer: its actors and whether it is shown."""

    name: str
    actors: list[Any] = field(default_factory=list)
    visible: bool = True


class PointCloud:
    """A point layer updated in place: one :class:`pyvista.PolyData` of fixed capacity whose points, values and
    vertex cells are overwritten each frame; the mesh, its arrays and the actor stay the same objects.

    capacity : most points ever shown at once.
    """

    def __init__(
        self,
        plotter: Any,
        name: str,
        capacity: int,
        *,
        cmap: Any,
        clim: tuple[float, float],
        point_size: float = 5.0,
        spheres: bool = True,
        scalar_bar: str | None = None,
    ):
        self.name = name
        self.capacity = max(int(capacity), 1)
        self.poly = pv.PolyData(np.zeros((self.capacity, 3), dtype=np.float32))
        self.poly.point_data["value"] = np.zeros(self.capacity, dtype=np.float32)
        self._ids = np.arange(self.capacity + 1, dtype=np.int64)
        self._cells = vtkCellArray()
        self.poly.SetVerts(self._cells)
        self.count = 0
        self._set_count(0)
        self.actor = plotter.add_mesh(
            self.poly,
            scalars="value",
            cmap=cmap,
            clim=clim,
            point_size=point_size,
            render_points_as_spheres=spheres,
            show_scalar_bar=scalar_bar is not None,
            scalar_bar_args=(
                {"title": scalar_bar, "position_x": 0.3, "position_y": 0.02, "width": 0.45, "height": 0.06}
                if scalar_bar
                else None
            ),
            name=name,
            reset_camera=False,
        )

    def _set_count(self, k: int) -> None:
        offsets = numpy_to_vtk(self._ids[: k + 1], deep=False, array_type=VTK_ID_TYPE)
        conn = numpy_to_vtk(self._ids[:k], deep=False, array_type=VTK_ID_TYPE) if k else vtkIdTypeArray()
        self._cells.SetData(offsets, conn)
        self._cells.Modified()
        self.count = k

    def update(self, xyz: np.ndarray, values: np.ndarray) -> None:
        """Show ``xyz`` (k, 3) metres with colour ``values`` (k,); k <= capacity (extra points are dropped)."""
        k = min(len(xyz), self.capacity)
        if len(xyz) > self.capacity:
            log.warning(
                "%s: %d points exceed the capacity %d; the rest are not drawn", self.name, len(xyz), k
            )
        pts = self.poly.points
        pts[:k] = xyz[:k]
        vals = self.poly.point_data["value"]
        vals[:k] = values[:k]
        self.poly.GetPoints().Modified()
        self.poly.GetPointData().GetArray("value").Modified()
        self._set_count(k)
        self.poly.Modified()


def _mesh(vertices: np.ndarray, faces: np.ndarray) -> pv.PolyData:
    faces = np.asarray(faces, dtype=np.int64).reshape(-1, 3)
    cells = np.column_stack([np.full(len(faces), 3, dtype=np.int64), faces]).ravel()
    return pv.PolyData(np.asarray(vertices, dtype=np.float64), cells)


class CityScene:
    """The 3-D scene of a city.

    Parameters
    ----------
    city : the :class:`~twin.city.City` to show (all its layers).
    plotter : a plotter to draw into; by default an off-screen :class:`pyvista.Plotter` of ``window_size``.
    window_size : (width, height) pixels.
    terrain_opacity : 0…1; below 1 the pipes under the ground show through.
    pipe_attribute : what colours the pipes: ``"diameter"`` (from the network) or values given later with
        :meth:`set_pipe_values` (``"pressure"``, ``"flow"``).
    max_terrain_triangles : the terrain mesh is decimated to at most this many triangles.
    """

    def __init__(
        self,
        city: Any,
        *,
        plotter: Any = None,
        window_size: tuple[int, int] = (1280, 720),
        off_screen: bool = True,
        terrain_opacity: float = 0.6,
        pipe_attribute: str = "diameter",
        max_terrain_triangles: int = 150_000,
        north_arrow: bool = True,
    ):
        if pipe_attribute not in PIPE_ATTRIBUTES:
            raise InputError(
                None, f"pipe_attribute must be one of {sorted(PIPE_ATTRIBUTES)}, got {pipe_attribute!r}"
            )
        self.city = city
        if plotter is None:
            plotter = pv.Plotter(off_screen=off_screen, window_size=list(window_size))
            plotter.ren_win.SetMultiSamples(0)  # MSAA costs 5-10x with Mesa's software rasteriser
        self.plotter = plotter
        plotter.set_background(COLORS["background"])
        self.layers: dict[str, Layer] = {}
        self.points: dict[str, PointCloud] = {}
        self.storey_actors: dict[str, dict[int, list[Any]]] = {}
        self._wall_actors: list[Any] = []
        self._clip_plane: vtkPlane | None = None
        self._road_cells: np.ndarray | None = None
        self._road_mesh: pv.PolyData | None = None
        self._road_ids: list[str] = []
        self._smoke: dict[str, tuple[pv.PolyData, np.ndarray, dict[str, int]]] = {}
        self._pipe_meshes: dict[str, tuple[pv.PolyData, np.ndarray]] = {}
        self.pipe_attribute = pipe_attribute
        self.kpi_actor: Any = None
        self._legend: list[tuple[str, str]] = []
        self._terrain_opacity = float(terrain_opacity)
        self._add_terrain(max_terrain_triangles)
        self._add_citymodel()
        self._add_roads()
        self._add_pipes()
        self._add_buildings()
        if north_arrow:
            plotter.add_north_arrow_widget(viewport=(0.0, 0.0, 0.1, 0.14))
        self.set_camera("overview")

    # -- layers ----------------------------------------------------------------------------------------------------
    def _layer(self, name: str) -> Layer:
        if name not in self.layers:
            self.layers[name] = Layer(name)
        return self.layers[name]

    def _add_terrain(self, max_triangles: int) -> None:
        terrain = self.city.terrain
        if terrain is None:
            return
        verts, faces = terrain.mesh(max_triangles=max_triangles)
        if not len(faces):
            return
        mesh = _mesh(verts, faces)
        actor = self.plotter.add_mesh(
            mesh,
            color=COLORS["terrain"],
            opacity=self._terrain_opacity,
            smooth_shading=True,
            name="terrain",
            reset_camera=False,
        )
        self._layer("terrain").actors.append(actor)

    def _add_citymodel(self) -> None:
        cm = self.city.citymodel
        if cm is None or not len(cm.faces):
            return
        actor = self.plotter.add_mesh(
            _mesh(cm.vertices, cm.faces), color=COLORS["citymodel"], name="citymodel", reset_camera=False
        )
        self._layer("citymodel").actors.append(actor)
        self._legend.append(("city model", COLORS["citymodel"]))

    def _add_roads(self) -> None:
        roads = self.city.roads
        if roads is None or not len(roads.edges):
            return
        edges = roads.edges
        internal = edges["id"].astype(str).str.startswith(":").to_numpy()
        shapes = [np.asarray(s, dtype=np.float64).reshape(-1, 2) for s in edges["shape"]]
        widths = np.clip(edges["num_lanes"].to_numpy(dtype=np.float64), 1, 6) * 3.2
        keep = np.flatnonzero(~internal)
        verts, faces, owner = geometry.ribbons(
            [shapes[i] for i in keep], widths[keep], terrain=self.city.terrain
        )
        if not len(faces):
            return
        mesh = _mesh(verts, faces)
        mesh.cell_data["closed"] = np.zeros(len(faces), dtype=np.float32)
        self._road_mesh = mesh
        self._road_cells = keep[owner]
        self._road_ids = edges["id"].astype(str).tolist()
        actor = self.plotter.add_mesh(
            mesh,
            scalars="closed",
            cmap=[COLORS["road"], COLORS["road_closed"]],
            clim=(0, 1),
            show_scalar_bar=False,
            name="roads",
            reset_camera=False,
        )
        self._layer("roads").actors.append(actor)
        self._legend += [("road", COLORS["road"]), ("road closed", COLORS["road_closed"])]

    def _add_pipes(self) -> None:
        for net_id, net in self.city.pipes.items():
            if not len(net.links):
                continue
            points, lines = geometry.pipe_polylines(net)
            cells = np.concatenate([np.concatenate([[len(line)], line]) for line in lines]).astype(np.int64)
            poly = pv.PolyData(points, lines=cells)
            poly.cell_data["link"] = np.arange(len(lines), dtype=np.float64)
            diameter = net.links["diameter_m"].to_numpy(dtype=np.float64)
            span = float(np.ptp(points[:, :2], axis=0).max()) if len(points) > 1 else 1.0
            tube = poly.tube(radius=max(0.3, span / 600.0), n_sides=8, capping=False)
            link_of_cell = tube.cell_data["link"].astype(np.int64)
            tube.cell_data["value"] = np.nan_to_num(diameter[link_of_cell]).astype(np.float32)
            title = f"{net_id}: {PIPE_ATTRIBUTES[self.pipe_attribute]}"
            finite = diameter[np.isfinite(diameter)]
            clim = (float(finite.min()), float(finite.max())) if len(finite) else (0.0, 1.0)
            if clim[0] == clim[1]:
                clim = (clim[0], clim[0] + 1.0)
            actor = self.plotter.add_mesh(
                tube,
                scalars="value",
                cmap="viridis",
                clim=clim,
                show_scalar_bar=True,
                scalar_bar_args={
                    "title": title,
                    "vertical": True,
                    "position_x": 0.9,
                    "position_y": 0.15,
                    "height": 0.3,
                    "width": 0.05,
                },
                name=f"pipes:{net_id}",
                reset_camera=False,
            )
            self._pipe_meshes[net_id] = (tube, link_of_cell)
            self._layer("pipes").actors.append(actor)

    def _add_buildings(self) -> None:
        styles = {
            "walls": {"color": COLORS["walls"], "opacity": 1.0},
            "slabs": {"color": COLORS["slabs"], "opacity": 1.0},
            "doors": {"color": COLORS["doors"], "opacity": 1.0},
            "stairs": {"color": COLORS["stairs"], "opacity": 1.0},
            "windows": {"color": COLORS["windows"], "opacity": 0.5},
        }
        for bid, building in self.city.buildings.items():
            per_storey: dict[int, list[Any]] = {}
            for (storey, group), (verts, faces) in sorted(geometry.storey_parts(building).items()):
                actor = self.plotter.add_mesh(
                    _mesh(verts, faces),
                    name=f"building:{bid}:{storey}:{group}",
                    reset_camera=False,
                    **styles[group],
                )
                per_storey.setdefault(storey, []).append(actor)
                self._layer("buildings").actors.append(actor)
                if group in ("walls", "slabs"):
                    self._wall_actors.append(actor)
            self.storey_actors[bid] = per_storey
            verts, faces, space_row = geometry.space_floors(building)
            if len(faces):
                mesh = _mesh(verts, faces)
                mesh.cell_data["visibility_m"] = np.full(len(faces), 30.0, dtype=np.float32)
                guids = {str(g): i for i, g in enumerate(building.spaces["guid"])}
                self._smoke[bid] = (mesh, space_row, guids)
                actor = self.plotter.add_mesh(
                    mesh,
                    scalars="visibility_m",
                    cmap="gray",
                    clim=(0.0, 30.0),
                    opacity=0.7,
                    show_scalar_bar=False,
                    name=f"smoke:{bid}",
                    reset_camera=False,
                )
                self._layer("smoke").actors.append(actor)
        if self.city.buildings:
            self._legend.append(("building", COLORS["walls"]))

    # -- hazard overlays -------------------------------------------------------------------------------------------
    def add_flood(self, flood: Mapping[str, Any], *, min_depth_m: float = 0.02) -> None:
        """Flood depth as a coloured water surface (``flood_max_depth.npz`` arrays; see
        :func:`geometry.flood_cells`). Replaces an earlier flood layer."""
        verts, faces, depth = geometry.flood_cells(flood, terrain=self.city.terrain, min_depth_m=min_depth_m)
        layer = self._layer("flood")
        for a in layer.actors:
            self.plotter.remove_actor(a)
        layer.actors.clear()
        if not len(faces):
            return
        mesh = _mesh(verts, faces)
        mesh.cell_data["depth_m"] = depth.astype(np.float32)
        actor = self.plotter.add_mesh(
            mesh,
            scalars="depth_m",
            cmap="Blues",
            clim=(0.0, max(float(depth.max()), 0.1)),
            opacity=0.85,
            scalar_bar_args={
                "title": "flood depth (m)",
                "vertical": True,
                "position_x": 0.9,
                "position_y": 0.5,
                "height": 0.2,
                "width": 0.05,
            },
            name="flood",
            reset_camera=False,
        )
        layer.actors.append(actor)

    def add_gas_zones(self, zones: Sequence[Any], *, height_m: float = 2.0) -> None:
        """Gas hazard zones: shapely polygons (local metres) drawn as translucent yellow sheets ``height_m`` above
        the ground. Replaces earlier zones."""
        from twin.city.citymodel import triangulate_polygons

        layer = self._layer("gas")
        for a in layer.actors:
            self.plotter.remove_actor(a)
        layer.actors.clear()
        polys = [z for z in zones if z is not None and not z.is_empty]
        if not polys:
            return
        tri, _owner = triangulate_polygons(np.array(polys, dtype=object))
        xy = tri.reshape(-1, 2)
        z = geometry.ground_z(self.city.terrain, xy[:, 0], xy[:, 1]) + height_m
        mesh = _mesh(np.column_stack([xy, z]), np.arange(len(xy)).reshape(-1, 3))
        actor = self.plotter.add_mesh(mesh, color=COLORS["gas"], opacity=0.45, name="gas", reset_camera=False)
        layer.actors.append(actor)
        self._legend.append(("gas zone", COLORS["gas"]))

    def set_smoke(self, rows: Any) -> None:
        """Colour each space floor by its smoke visibility (m, clipped to 0…30; clear spaces 30).

        ``rows``: a table with ``building``, ``space`` (GUID) and ``visibility_m`` (one smoke record), updated in
        place in the floor meshes' cell arrays.
        """
        per_building: dict[str, dict[str, float]] = {}
        if rows is not None and len(rows):
            for b, s, v in zip(rows["building"], rows["space"], rows["visibility_m"], strict=True):
                per_building.setdefault(str(b), {})[str(s)] = float(v)
        for bid, (mesh, space_row, guids) in self._smoke.items():
            vis = np.full(len(guids), 30.0)
            for guid, v in per_building.get(bid, {}).items():
                if guid in guids:
                    vis[guids[guid]] = min(max(v, 0.0), 30.0) if np.isfinite(v) else 30.0
            arr = mesh.cell_data["visibility_m"]
            arr[:] = vis[space_row]
            mesh.GetCellData().GetArray("visibility_m").Modified()
            mesh.Modified()

    def set_closed_roads(self, edge_ids: set[str] | Sequence[str]) -> None:
        """Draw the given road edges as closed (red), the others as open; in place."""
        if self._road_mesh is None or self._road_cells is None:
            return
        closed = np.isin(np.asarray(self._road_ids, dtype=object), np.asarray(list(edge_ids), dtype=object))
        arr = self._road_mesh.cell_data["closed"]
        arr[:] = closed[self._road_cells].astype(np.float32)
        self._road_mesh.GetCellData().GetArray("closed").Modified()
        self._road_mesh.Modified()

    def set_pipe_values(self, network: str, values: np.ndarray, *, attribute: str) -> None:
        """Colour network ``network``'s pipes by ``values`` (one float per link, in ``links`` order), titled by
        ``attribute`` (a key of :data:`PIPE_ATTRIBUTES`); in place."""
        if network not in self._pipe_meshes:
            raise KeyError(f"no pipe network {network!r}; have {sorted(self._pipe_meshes)}")
        tube, link_of_cell = self._pipe_meshes[network]
        v = np.asarray(values, dtype=np.float64).reshape(-1)
        if len(v) <= int(link_of_cell.max()):
            raise ValueError(f"values must have one entry per link ({link_of_cell.max() + 1}), got {len(v)}")
        arr = tube.cell_data["value"]
        arr[:] = np.nan_to_num(v[link_of_cell])
        tube.GetCellData().GetArray("value").Modified()
        finite = v[np.isfinite(v)]
        if len(finite):
            lo, hi = float(finite.min()), float(finite.max())
            for actor in self.layers["pipes"].actors:
                if actor.mapper.dataset is tube:
                    actor.mapper.scalar_range = (lo, hi if hi > lo else lo + 1.0)
        self.pipe_attribute = attribute

    # -- moving points ---------------------------------------------------------------------------------------------
    def add_points(
        self,
        name: str,
        capacity: int,
        *,
        cmap: Any,
        clim: tuple[float, float],
        point_size: float = 5.0,
        spheres: bool = True,
        scalar_bar: str | None = None,
        legend: Sequence[tuple[str, str]] = (),
    ) -> PointCloud:
        """A :class:`PointCloud` layer (``agents``, ``vehicles``) of ``capacity`` points."""
        cloud = PointCloud(
            self.plotter,
            name,
            capacity,
            cmap=cmap,
            clim=clim,
            point_size=point_size,
            spheres=spheres,
            scalar_bar=scalar_bar,
        )
        self.points[name] = cloud
        self._layer(name).actors.append(cloud.actor)
        self._legend += list(legend)
        return cloud

    # -- toggles and styles ----------------------------------------------------------------------------------------
    def set_visible(self, name: str, visible: bool) -> None:
        """Show or hide layer ``name`` (a key of :attr:`layers`)."""
        if name not in self.layers:
            raise KeyError(f"no layer {name!r}; layers are {sorted(self.layers)}")
        layer = self.layers[name]
        layer.visible = bool(visible)
        for actor in layer.actors:
            actor.SetVisibility(layer.visible)
        if name == "buildings":
            self._apply_cutaway()

    def set_terrain_opacity(self, opacity: float) -> None:
        """Terrain opacity 0…1 (0 hides it; lower values show the pipes underground)."""
        self._terrain_opacity = float(np.clip(opacity, 0.0, 1.0))
        for actor in self.layers.get("terrain", Layer("terrain")).actors:
            actor.prop.opacity = self._terrain_opacity

    def set_clip_plane(
        self, origin: Sequence[float] | None, normal: Sequence[float] = (0.0, 0.0, -1.0)
    ) -> None:
        """Clip the terrain and buildings with a plane (keeps the side ``normal`` points to); ``None`` removes it.

        The default normal (down) with an origin at height z cuts away everything above z.
        """
        targets = [
            a for n in ("terrain", "buildings", "citymodel") for a in self.layers.get(n, Layer(n)).actors
        ]
        if self._clip_plane is not None:
            for a in targets:
                a.mapper.RemoveClippingPlane(self._clip_plane)
            self._clip_plane = None
        if origin is None:
            return
        plane = vtkPlane()
        plane.SetOrigin(*map(float, origin))
        plane.SetNormal(*map(float, normal))
        for a in targets:
            a.mapper.AddClippingPlane(plane)
        self._clip_plane = plane

    def cut_away(self, above_storey: int | None, *, building: str | None = None) -> None:
        """Hide the storeys above storey row ``above_storey`` (0 = lowest) of ``building`` (all when ``None``);
        ``None`` shows every storey again."""
        self._cut = {} if not hasattr(self, "_cut") else self._cut
        for bid in self.storey_actors:
            if building is None or bid == building:
                self._cut[bid] = above_storey
        self._apply_cutaway()

    def _apply_cutaway(self) -> None:
        cut = getattr(self, "_cut", {})
        shown = self.layers.get("buildings", Layer("buildings")).visible
        for bid, per_storey in self.storey_actors.items():
            top = cut.get(bid)
            for storey, actors in per_storey.items():
                for a in actors:
                    a.SetVisibility(shown and (top is None or storey <= top))

    def set_xray(self, on: bool, *, opacity: float = 0.15) -> None:
        """X-ray: make walls and slabs translucent (``opacity``) so rooms, people and smoke inside show."""
        for actor in self._wall_actors:
            actor.prop.opacity = opacity if on else 1.0

    def set_kpi_text(self, text: str) -> None:
        """The KPI overlay (upper left), updated in place."""
        if self.kpi_actor is None:
            self.kpi_actor = self.plotter.add_text(
                text, position="upper_left", font_size=11, color="black", name="kpi"
            )
        else:
            self.kpi_actor.SetText(2, text)  # a vtkCornerAnnotation; corner 2 is the upper left

    def add_legend(self) -> None:
        """A legend of the layers' colours (upper right)."""
        entries = list(dict.fromkeys(self._legend))
        if entries:
            self.plotter.add_legend(
                labels=[[label, color] for label, color in entries],
                bcolor="white",
                size=(0.16, 0.035 * len(entries)),
                loc="upper right",
                face="circle",
                background_opacity=0.8,
                name="legend",
            )

    # -- camera ----------------------------------------------------------------------------------------------------
    def focus_bounds(self, preset: str) -> np.ndarray:
        """(2, 3) bounds the preset frames: the whole city, or the first building (the city when none)."""
        if preset != "overview" and self.city.buildings:
            return next(iter(self.city.buildings.values())).bounds()
        b = self.city.bounds()
        if np.isnan(b).any():
            pts = [c.poly.points[: c.count] for c in self.points.values() if c.count]
            if pts:
                p = np.vstack(pts)
                return np.array([p.min(axis=0), p.max(axis=0)], dtype=np.float64)
            return np.array([[-50.0, -50.0, 0.0], [50.0, 50.0, 10.0]])
        return b

    def set_camera(self, preset: str = "overview") -> None:
        """Frame the scene: ``overview`` (the whole city from the south, oblique), ``building`` (the first
        building, oblique), ``street`` (at eye height in the street south of the first building)."""
        if preset not in PRESETS:
            raise InputError(None, f"camera preset must be one of {list(PRESETS)}, got {preset!r}")
        b = self.focus_bounds(preset)
        centre = b.mean(axis=0)
        size = float(max(np.ptp(b[:, 0]), np.ptp(b[:, 1]), np.ptp(b[:, 2]), 1.0))
        cam = self.plotter.camera
        cam.view_angle = 30.0
        if preset == "overview":
            d = 1.25 * size
            pos = centre + d * np.array([0.25, -0.75, 0.85])
            focus = centre
        elif preset == "building":
            d = 1.6 * size
            pos = centre + d * np.array([0.55, -0.7, 0.6])
            focus = centre
        else:
            ground = b[0, 2]
            pos = np.array([centre[0] + 0.3 * size, b[0, 1] - 1.2 * size, ground + 1.7])
            focus = np.array([centre[0], centre[1], ground + 0.35 * np.ptp(b[:, 2]) + 2.0])
        cam.position = tuple(pos)
        cam.focal_point = tuple(focus)
        cam.up = (0.0, 0.0, 1.0)
        self.plotter.renderer.ResetCameraClippingRange()
        self.preset = preset

    # -- output ----------------------------------------------------------------------------------------------------
    def render(self) -> None:
        self.plotter.renderer.ResetCameraClippingRange()
        self.plotter.render()

    def image(self) -> np.ndarray:
        """The current picture: (height, width, 3) uint8."""
        self.render()
        return np.asarray(self.plotter.screenshot(return_img=True))

    def close(self) -> None:
        self.plotter.close()
