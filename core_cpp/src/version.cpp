// Keeps the core library non-empty until subsystems land; reports the core's version.
namespace twin {
const char* core_version() { return "0.1.0"; }
}  // namespace twin
