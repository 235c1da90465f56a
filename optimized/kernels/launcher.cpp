// moegate's compiled launcher: an eager `moegate.optimized.route` call, from the Python call to the
// kernel launch, in one C++ function (optimized/native.py builds it with torch's C++ extension loader
// and falls back to the Python launcher when it cannot).
//
// Why: the Python launcher spends ~20 us on the host per call (two torch.empty from Python, the argument
// packing and the ctypes call into the driver, check_inputs); issue 9's target is 8 us. Here the checks,
// the two allocations (at::empty's allocator called directly, no Python objects until the result), the
// plan, the geometry, torch's current stream (c10's handle), the parameter buffer and cuLaunchKernelEx are
// C++.
//
// Contract with optimized/route.py:
//   * route(scores, bias, record, out) returns (topk_ids, topk_weights), or None to mean "take the Python
//     path": every input that check_inputs would reject, anything unusual (a tensor subclass, a device
//     this record has no kernels for, a CPU tensor outside test mode) returns None before any allocation
//     or launch, and the Python path then raises check_inputs' own error (or launches). So every check of
//     check_inputs is made before the launch, with the very same messages.
//   * A record (make_record, a capsule) holds one RoutingConfig's kernel arguments and its KernelPlan's
//     geometry; set_kernels stores, per device, the SM count, programmatic dependent launch, and the
//     CUfunction and grid cap of each (scores dtype, plan), the bound plan's function 0 for a scores dtype
//     whose plan has no bound kernel (a segment row's lazy named keys are the bound plan in float32
//     only: dispatch.py lazy_named_plan_applies). The plan and geometry below are dispatch.py's
//     KernelPlan.selection_plan / geometry, line for line (a CPU test compares them).
//   * configure(launch_function, stream_function, launch_error, allow_cpu): the address of
//     cuLaunchKernelEx (or, in the CPU test, of a recording callback), torch's
//     _cuda_getCurrentRawStream (asked on the first launch after configure, to check c10's stream
//     handle, and on every launch if the two ever differ), the LaunchError class; allow_cpu lets the CPU
//     test route CPU tensors (stream 0, device slot 0).
//
// The parameter buffer is launch.py's ROUTE_PARAMS ("<QqqQiiiiiiiiiifiQQ", 96 bytes), passed with
// CU_LAUNCH_PARAM_BUFFER_POINTER; the launch structures mirror the driver's CUlaunchConfig and
// CUlaunchAttribute (static_asserts below), so no CUDA header is needed and CI compiles this file with a
// CPU build of torch.

#include <Python.h>

#include <ATen/EmptyTensor.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <c10/core/Allocator.h>
#include <c10/core/DeviceGuard.h>
#include <c10/core/impl/DeviceGuardImplInterface.h>
#include <torch/csrc/Exceptions.h>
#include <torch/csrc/autograd/python_variable.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>

namespace {

constexpr int kPlanThroughput = 0;  // dispatch.py PLAN_THROUGHPUT, route.cu kPlanThroughput
constexpr int kPlanLatency = 1;     // dispatch.py PLAN_LATENCY
constexpr int kPlanBound = 2;       // dispatch.py PLAN_BOUND
constexpr int kNumPlans = 3;
constexpr int kWarpSize = 32;
constexpr int64_t kMaxThreadsPerSm = 2048;  // dispatch.py MAX_THREADS_PER_SM
constexpr int kMaxDevices = 64;             // devices beyond take the Python path
constexpr int kNumScoreDtypes = 3;          // dispatch.py SCORE_DTYPE_CODES: float32, bfloat16, float16
constexpr const char* kRecordName = "moegate.launcher.record";

// ---- the driver's launch structures (cuda.h), mirrored --------------------------------------------------
constexpr int kLaunchParamEnd = 0;                 // CU_LAUNCH_PARAM_END
constexpr int kLaunchParamBufferPointer = 1;       // CU_LAUNCH_PARAM_BUFFER_POINTER
constexpr int kLaunchParamBufferSize = 2;          // CU_LAUNCH_PARAM_BUFFER_SIZE
constexpr int kAttributeProgrammaticSerialization = 6;  // CU_LAUNCH_ATTRIBUTE_PROGRAMMATIC_STREAM_SERIALIZATION

struct LaunchAttribute {  // CUlaunchAttribute: id, padding, a 64-byte value union
  int id;
  int pad;
  int value;
  char rest[60];
};
struct LaunchConfig {  // CUlaunchConfig
  unsigned grid_x, grid_y, grid_z;
  unsigned block_x, block_y, block_z;
  unsigned shared_mem_bytes;
  void* stream;
  LaunchAttribute* attrs;
  unsigned num_attrs;
};
static_assert(sizeof(LaunchAttribute) == 72, "CUlaunchAttribute is 72 bytes");
static_assert(offsetof(LaunchConfig, stream) == 32 && offsetof(LaunchConfig, attrs) == 40, "CUlaunchConfig");
static_assert(sizeof(LaunchConfig) == 56, "CUlaunchConfig is 56 bytes");
typedef int (*LaunchFunction)(const LaunchConfig*, void* function, void** params, void** extra);

// ---- the kernels' parameters (route.cu's signature; launch.py's ROUTE_PARAMS) ---------------------------
struct RouteParams {
  uint64_t scores;
  int64_t num_rows;
  int64_t row_stride;
  uint64_t bias;
  int32_t bias_dtype;
  int32_t num_experts;
  int32_t num_groups;
  int32_t topk_group;
  int32_t topk;
  int32_t scoring;
  int32_t renormalize;
  int32_t num_shared;
  int32_t replica;
  int32_t apply_scaling;
  float r;
  int32_t plan;
  uint64_t ids;
  uint64_t weights;
};
static_assert(sizeof(RouteParams) == 96, "ROUTE_PARAMS is 96 bytes");
static_assert(offsetof(RouteParams, bias_dtype) == 32 && offsetof(RouteParams, r) == 72, "ROUTE_PARAMS");
static_assert(offsetof(RouteParams, plan) == 76 && offsetof(RouteParams, ids) == 80, "ROUTE_PARAMS");

// ---- a record: one RoutingConfig's arguments and plan geometry, and per device its kernels -------------
struct DeviceKernels {
  int64_t sm_count = 0;  // 0: this device is not registered
  int programmatic = 0;  // programmatic dependent launch (sm_90+)
  // [scores dtype code][plan]: CUfunction, 0 = none (for the bound plan: that dtype's plan has no bound kernel)
  uint64_t function[kNumScoreDtypes][kNumPlans] = {};
  int64_t cap_blocks_per_sm[kNumScoreDtypes][kNumPlans] = {};  // dispatch.py KernelPlan.cap_blocks_per_sm
};

struct Record {
  // RoutingConfig, as the kernels take it
  int num_experts, num_groups, topk_group, topk, scoring, renormalize, num_shared, replica, apply_scaling;
  float r;
  int width;  // W, config.output_width
  // KernelPlan (the same for every scores dtype; whether it has a bound kernel is per dtype, DeviceKernels)
  int warps_per_block, rows_per_warp, has_latency_kernel, shared_mem_bytes;
  int bound_min_blocks_per_sm;  // KernelPlan.bound_min_blocks_per_sm
  int loop_block_rows;          // KernelPlan.loop_block_rows (0: a looping grid stays at its cap)
  DeviceKernels devices[kMaxDevices];
};

// ---- module state (set by configure) ------------------------------------------------------------------
LaunchFunction g_launch = nullptr;
PyObject* g_stream_function = nullptr;  // torch._C._cuda_getCurrentRawStream
PyObject* g_launch_error = nullptr;     // moegate.optimized.launch.LaunchError
bool g_allow_cpu = false;
// at::empty's CUDA allocator (torch's caching allocator, or the one a user installed), read from the
// storage of the first output at::empty made: later outputs come from it directly (at::detail::
// empty_generic), without the dispatcher's way to the same allocator call.
c10::Allocator* g_cuda_allocator = nullptr;
// How the current stream is found: 0 not yet decided, 1 c10's stream handle (checked once against
// torch._C._cuda_getCurrentRawStream on the first launch), 2 the Python function (the check failed).
int g_stream_source = 0;

int score_dtype_code(c10::ScalarType t) {
  switch (t) {
    case c10::ScalarType::Float: return 0;
    case c10::ScalarType::BFloat16: return 1;
    case c10::ScalarType::Half: return 2;
    default: return -1;
  }
}

int bias_dtype_code(c10::ScalarType t) {  // dispatch.py BIAS_DTYPE_CODES; 0 is "no bias"
  const int code = score_dtype_code(t);
  return code < 0 ? -1 : code + 1;
}

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// An output [rows, width] of `dtype` on the device of `like` (whose device is current): at::empty the first
// time, then its allocator directly (the same allocator, so the same memory pools, CUDA-graph pools and
// stream semantics; the kernel writes every element, so nothing is filled).
at::Tensor empty_output(int64_t rows, int64_t width, c10::ScalarType dtype, const at::Tensor& like) {
  if (like.is_cuda() && g_cuda_allocator != nullptr) {
    const c10::DispatchKeySet keys(c10::DispatchKey::CUDA);
    return at::Tensor(at::detail::empty_generic({rows, width}, g_cuda_allocator, keys, dtype, std::nullopt));
  }
  at::Tensor t = at::empty({rows, width}, like.options().dtype(dtype));
  if (t.is_cuda() && t.storage().allocator() != nullptr) g_cuda_allocator = t.storage().allocator();
  return t;
}

// torch's current stream on `device` (a CUDA device, current) through its Python function.
bool python_stream(const c10::Device& device, void** stream) {
  PyObject* index = PyLong_FromLong(device.index());
  if (index == nullptr) return false;
  PyObject* handle = PyObject_CallOneArg(g_stream_function, index);
  Py_DECREF(index);
  if (handle == nullptr) return false;
  *stream = PyLong_AsVoidPtr(handle);
  Py_DECREF(handle);
  return !PyErr_Occurred();
}

// torch's current stream on `device`: c10's stream handle where the first launch found it equal to
// torch._C._cuda_getCurrentRawStream's, else that function. false with a Python error set on failure.
bool current_stream(const c10::Device& device, void** stream) {
  if (g_stream_source == 2) return python_stream(device, stream);
  void* native = nullptr;
  try {
    const c10::impl::DeviceGuardImplInterface* impl = c10::impl::getDeviceGuardImpl(device.type());
    native = impl->getStreamNativeHandle(impl->getStream(device));
  } catch (const std::exception&) {
    g_stream_source = 2;
    return python_stream(device, stream);
  }
  if (g_stream_source == 1) {
    *stream = native;
    return true;
  }
  if (!python_stream(device, stream)) return false;
  g_stream_source = *stream == native ? 1 : 2;
  return true;
}

// A plain tensor of ours to read: not a subclass with Python dispatch, with storage, on a device we launch
// on (CUDA; the CPU too in test mode).
bool plain_tensor(PyObject* obj) {
  if (!THPVariable_Check(obj)) return false;
  const at::Tensor& t = THPVariable_Unpack(obj);
  if (!t.defined() || t.unsafeGetTensorImpl()->is_python_dispatch() || !t.has_storage()) return false;
  return t.is_cuda() || (g_allow_cpu && t.is_cpu());
}

// out = (ids int32 [T, W], weights float32 [T, W]), contiguous, on `device`: route.py's _check_out.
bool out_ok(PyObject* out, int64_t num_rows, int64_t width, const c10::Device& device) {
  if (!PyTuple_Check(out) && !PyList_Check(out)) return false;
  if (PySequence_Fast_GET_SIZE(out) != 2) return false;
  PyObject** items = PySequence_Fast_ITEMS(out);
  const c10::ScalarType want[2] = {c10::ScalarType::Int, c10::ScalarType::Float};
  for (int i = 0; i < 2; ++i) {
    if (!plain_tensor(items[i])) return false;
    const at::Tensor& t = THPVariable_Unpack(items[i]);
    if (t.scalar_type() != want[i] || t.device() != device || t.dim() != 2 || t.size(0) != num_rows ||
        t.size(1) != width || !t.is_contiguous()) {
      return false;
    }
  }
  return true;
}

// route(scores, bias, record, out) -> (ids, weights) | None
PyObject* route(PyObject* /*module*/, PyObject* const* args, Py_ssize_t nargs) {
  HANDLE_TH_ERRORS
  if (nargs != 4) {
    PyErr_Format(PyExc_TypeError, "route takes (scores, bias, record, out), got %zd arguments", nargs);
    return nullptr;
  }
  if (!PyCapsule_IsValid(args[2], kRecordName)) {
    PyErr_SetString(PyExc_TypeError, "route: record must be a record from make_record");
    return nullptr;
  }
  auto* rec = static_cast<Record*>(PyCapsule_GetPointer(args[2], kRecordName));
  if (g_launch == nullptr) {
    PyErr_SetString(PyExc_RuntimeError, "moegate launcher: configure() was not called");
    return nullptr;
  }
  PyObject* const scores_obj = args[0];
  PyObject* const bias_obj = args[1];
  PyObject* const out_obj = args[3];

  // ---- check_inputs, in C++: anything it would reject goes back to the Python path ----
  if (!plain_tensor(scores_obj)) Py_RETURN_NONE;
  const at::Tensor& scores = THPVariable_Unpack(scores_obj);
  const int dtype_code = score_dtype_code(scores.scalar_type());
  if (dtype_code < 0 || scores.dim() != 2) Py_RETURN_NONE;
  const int64_t num_rows = scores.size(0);
  const int64_t num_experts = rec->num_experts;
  if (scores.size(1) != num_experts) Py_RETURN_NONE;
  if (num_rows > 0 && num_experts > 1 && scores.stride(1) != 1) Py_RETURN_NONE;
  if (num_rows > 1 && scores.stride(0) < num_experts) Py_RETURN_NONE;
  const c10::Device device = scores.device();
  int bias_code = 0;
  uint64_t bias_ptr = 0;
  if (bias_obj != Py_None) {
    if (!plain_tensor(bias_obj)) Py_RETURN_NONE;
    const at::Tensor& bias = THPVariable_Unpack(bias_obj);
    bias_code = bias_dtype_code(bias.scalar_type());
    if (bias_code < 0 || bias.dim() != 1 || bias.size(0) != num_experts) Py_RETURN_NONE;
    if (num_experts > 1 && bias.stride(0) != 1) Py_RETURN_NONE;
    if (bias.device() != device) Py_RETURN_NONE;
    bias_ptr = reinterpret_cast<uint64_t>(bias.const_data_ptr());
  }
  if (out_obj != Py_None && !out_ok(out_obj, num_rows, rec->width, device)) Py_RETURN_NONE;

  // ---- this device's kernels (registered by the Python path's first call) ----
  const int slot = device.is_cuda() ? device.index() : 0;
  if (slot < 0 || slot >= kMaxDevices) Py_RETURN_NONE;
  const DeviceKernels& kernels = rec->devices[slot];
  if (kernels.sm_count == 0) Py_RETURN_NONE;

  // ---- step 5's plan and the geometry: dispatch.py's KernelPlan.selection_plan and geometry ----
  const int64_t sm_count = kernels.sm_count;
  const int64_t warps_per_block = rec->warps_per_block;
  const int64_t blocks = ceil_div(num_rows, warps_per_block);
  const bool has_bound_kernel = kernels.function[dtype_code][kPlanBound] != 0;
  const bool bound_batch = has_bound_kernel && blocks >= rec->bound_min_blocks_per_sm * sm_count;
  const int plan = blocks <= sm_count ? kPlanLatency : bound_batch ? kPlanBound : kPlanThroughput;
  const bool latency_kernel = rec->has_latency_kernel && plan == kPlanLatency;
  const bool bound_kernel = has_bound_kernel && plan == kPlanBound;
  const int kernel_plan = latency_kernel ? kPlanLatency : bound_kernel ? kPlanBound : kPlanThroughput;
  const uint64_t function = kernels.function[dtype_code][kernel_plan];
  if (function == 0) Py_RETURN_NONE;
  int64_t grid, block;
  // A row with two plans spreads its warps over the SMs until a full block per SM is needed (a warp takes
  // one row in the latency plan, rows_per_warp in the throughput plan).
  const int64_t warps_needed = ceil_div(num_rows, latency_kernel ? 1 : rec->rows_per_warp);
  const int64_t spread = std::min(warps_per_block, std::max<int64_t>(1, ceil_div(warps_needed, sm_count)));
  if (rec->has_latency_kernel && (latency_kernel || spread < warps_per_block)) {
    grid = std::max<int64_t>(1, ceil_div(warps_needed, spread));
    block = kWarpSize * spread;
  } else {
    block = kWarpSize * warps_per_block;
    const int64_t wanted = ceil_div(num_rows, warps_per_block * rec->rows_per_warp);
    // One block per block's rows while a full SM's threads on every SM holds them; beyond, blocks that loop.
    const int64_t full = sm_count * (kMaxThreadsPerSm / block);
    // Looping: the cap's blocks per SM times the smallest whole multiple that leaves each block at most
    // loop_block_rows rows (dispatch.py loop_cap_multiple), where the cap is a full SM's threads.
    const int64_t cap = kernels.cap_blocks_per_sm[dtype_code][kernel_plan];
    int64_t multiple = 1;
    if (rec->loop_block_rows > 0 && cap == kMaxThreadsPerSm / block) {
      const int64_t per_sm = ceil_div(num_rows, rec->loop_block_rows * sm_count);
      multiple = std::max<int64_t>(1, ceil_div(per_sm, cap));
    }
    grid = wanted <= full ? std::max<int64_t>(1, wanted) : sm_count * cap * multiple;
  }

  // ---- allocate (or take the caller's buffers) ----
  c10::OptionalDeviceGuard guard;
  if (device.is_cuda()) guard.reset_device(device);  // the driver launches in the current device's context
  at::Tensor ids, weights;
  if (out_obj == Py_None) {
    ids = empty_output(num_rows, rec->width, c10::ScalarType::Int, scores);
    weights = empty_output(num_rows, rec->width, c10::ScalarType::Float, scores);
  } else {
    PyObject** items = PySequence_Fast_ITEMS(out_obj);
    ids = THPVariable_Unpack(items[0]);
    weights = THPVariable_Unpack(items[1]);
  }

  // ---- launch (none for T = 0) ----
  if (num_rows > 0) {
    void* stream = nullptr;
    if (device.is_cuda() && !current_stream(device, &stream)) return nullptr;
    RouteParams params;
    params.scores = reinterpret_cast<uint64_t>(scores.const_data_ptr());
    params.num_rows = num_rows;
    params.row_stride = num_rows > 1 ? scores.stride(0) : num_experts;  // route.py: T <= 1 never steps
    params.bias = bias_ptr;
    params.bias_dtype = bias_code;
    params.num_experts = rec->num_experts;
    params.num_groups = rec->num_groups;
    params.topk_group = rec->topk_group;
    params.topk = rec->topk;
    params.scoring = rec->scoring;
    params.renormalize = rec->renormalize;
    params.num_shared = rec->num_shared;
    params.replica = rec->replica;
    params.apply_scaling = rec->apply_scaling;
    params.r = rec->r;
    params.plan = plan;
    params.ids = reinterpret_cast<uint64_t>(ids.data_ptr());
    params.weights = reinterpret_cast<uint64_t>(weights.data_ptr());
    size_t params_size = sizeof(params);
    void* extra[5] = {reinterpret_cast<void*>(static_cast<intptr_t>(kLaunchParamBufferPointer)), &params,
                      reinterpret_cast<void*>(static_cast<intptr_t>(kLaunchParamBufferSize)), &params_size,
                      reinterpret_cast<void*>(static_cast<intptr_t>(kLaunchParamEnd))};
    LaunchAttribute attribute{};
    attribute.id = kAttributeProgrammaticSerialization;
    attribute.value = 1;
    LaunchConfig config{};
    config.grid_x = static_cast<unsigned>(grid);
    config.grid_y = config.grid_z = 1;
    config.block_x = static_cast<unsigned>(block);
    config.block_y = config.block_z = 1;
    config.shared_mem_bytes = static_cast<unsigned>(rec->shared_mem_bytes);
    config.stream = stream;
    config.attrs = &attribute;
    config.num_attrs = kernels.programmatic ? 1u : 0u;
    const int status = g_launch(&config, reinterpret_cast<void*>(function), nullptr, extra);
    if (status != 0) {
      PyErr_Format(g_launch_error, "cuLaunchKernelEx failed with CUDA error %d", status);
      return nullptr;
    }
  }
  PyObject* result = PyTuple_New(2);
  if (result == nullptr) return nullptr;
  PyTuple_SET_ITEM(result, 0, THPVariable_Wrap(std::move(ids)));
  PyTuple_SET_ITEM(result, 1, THPVariable_Wrap(std::move(weights)));
  return result;
  END_HANDLE_TH_ERRORS
}

void delete_record(PyObject* capsule) {
  delete static_cast<Record*>(PyCapsule_GetPointer(capsule, kRecordName));
}

// make_record(num_experts, num_groups, topk_group, topk, scoring, renormalize, num_shared, replica,
//             apply_scaling, r, width, warps_per_block, rows_per_warp, has_latency_kernel,
//             shared_mem_bytes, bound_min_blocks_per_sm, loop_block_rows) -> capsule
PyObject* make_record(PyObject* /*module*/, PyObject* args) {
  auto* rec = new Record();
  if (!PyArg_ParseTuple(args, "iiiiiiiiifiiiiiii", &rec->num_experts, &rec->num_groups, &rec->topk_group,
                        &rec->topk, &rec->scoring, &rec->renormalize, &rec->num_shared, &rec->replica,
                        &rec->apply_scaling, &rec->r, &rec->width, &rec->warps_per_block, &rec->rows_per_warp,
                        &rec->has_latency_kernel, &rec->shared_mem_bytes, &rec->bound_min_blocks_per_sm,
                        &rec->loop_block_rows)) {
    delete rec;
    return nullptr;
  }
  if (rec->num_experts < 1 || rec->width < 1 || rec->warps_per_block < 1 || rec->rows_per_warp < 1 ||
      rec->bound_min_blocks_per_sm < 1 || rec->loop_block_rows < 0) {
    delete rec;
    PyErr_SetString(PyExc_ValueError, "make_record: E, W, warps_per_block, rows_per_warp and "
                                      "bound_min_blocks_per_sm must be >= 1, loop_block_rows >= 0");
    return nullptr;
  }
  PyObject* capsule = PyCapsule_New(rec, kRecordName, delete_record);
  if (capsule == nullptr) delete rec;
  return capsule;
}

// set_kernels(record, device, sm_count, programmatic, dtype_code, throughput_function, latency_function,
//             bound_function, throughput_cap, latency_cap, bound_cap): each cap in blocks per SM, 1 to
//             kMaxThreadsPerSm / 32 (dispatch.py KernelPlan.cap_blocks_per_sm of its resident blocks);
//             bound_function 0 where this dtype's plan has no bound kernel
PyObject* set_kernels(PyObject* /*module*/, PyObject* args) {
  PyObject* capsule;
  int device, programmatic, dtype_code;
  long long sm_count;
  unsigned long long throughput, latency, bound;
  long long caps[kNumPlans];
  if (!PyArg_ParseTuple(args, "OiLiiKKKLLL", &capsule, &device, &sm_count, &programmatic, &dtype_code,
                        &throughput, &latency, &bound, &caps[kPlanThroughput], &caps[kPlanLatency],
                        &caps[kPlanBound])) {
    return nullptr;
  }
  if (!PyCapsule_IsValid(capsule, kRecordName)) {
    PyErr_SetString(PyExc_TypeError, "set_kernels: record must be a record from make_record");
    return nullptr;
  }
  auto* rec = static_cast<Record*>(PyCapsule_GetPointer(capsule, kRecordName));
  if (device < 0 || device >= kMaxDevices || dtype_code < 0 || dtype_code >= kNumScoreDtypes || sm_count < 1) {
    PyErr_Format(PyExc_ValueError,
                 "set_kernels: device=%d (need 0..%d), dtype_code=%d (need 0..%d), sm_count=%lld (need >= 1)",
                 device, kMaxDevices - 1, dtype_code, kNumScoreDtypes - 1, sm_count);
    return nullptr;
  }
  for (int plan = 0; plan < kNumPlans; ++plan) {
    if (caps[plan] < 1 || caps[plan] > kMaxThreadsPerSm / kWarpSize) {
      PyErr_Format(PyExc_ValueError, "set_kernels: cap %d is %lld blocks per SM, but need 1..%lld", plan,
                   caps[plan], static_cast<long long>(kMaxThreadsPerSm / kWarpSize));
      return nullptr;
    }
  }
  DeviceKernels& k = rec->devices[device];
  k.sm_count = sm_count;
  k.programmatic = programmatic;
  k.function[dtype_code][kPlanThroughput] = throughput;
  k.function[dtype_code][kPlanLatency] = latency;
  k.function[dtype_code][kPlanBound] = bound;
  for (int plan = 0; plan < kNumPlans; ++plan) k.cap_blocks_per_sm[dtype_code][plan] = caps[plan];
  Py_RETURN_NONE;
}

// configure(launch_function_address, stream_function, launch_error, allow_cpu)
PyObject* configure(PyObject* /*module*/, PyObject* args) {
  unsigned long long address;
  PyObject *stream_function, *launch_error;
  int allow_cpu;
  if (!PyArg_ParseTuple(args, "KOOp", &address, &stream_function, &launch_error, &allow_cpu)) return nullptr;
  if (address == 0 || !PyCallable_Check(stream_function) || !PyExceptionClass_Check(launch_error)) {
    PyErr_SetString(PyExc_TypeError,
                    "configure needs a launch function address, a callable stream function and an exception "
                    "class");
    return nullptr;
  }
  Py_INCREF(stream_function);
  Py_INCREF(launch_error);
  Py_XDECREF(g_stream_function);
  Py_XDECREF(g_launch_error);
  g_stream_function = stream_function;
  g_launch_error = launch_error;
  g_launch = reinterpret_cast<LaunchFunction>(static_cast<uintptr_t>(address));
  g_allow_cpu = allow_cpu != 0;
  g_stream_source = 0;  // a new stream function: checked again on the next launch
  Py_RETURN_NONE;
}

PyMethodDef methods[] = {
    {"route", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(route)), METH_FASTCALL,
     "route(scores, bias, record, out) -> (topk_ids, topk_weights), or None for the Python path"},
    {"make_record", make_record, METH_VARARGS, "a record of one RoutingConfig and its plan geometry"},
    {"set_kernels", set_kernels, METH_VARARGS, "register a device's kernels for one scores dtype"},
    {"configure", configure, METH_VARARGS, "the launch function, stream function, error class, test mode"},
    {nullptr, nullptr, 0, nullptr},
};

}  // namespace

// The module's name is the one torch's extension loader gives it (optimized/native.py: versioned by the
// source's digest, so a changed file is never served by a stale build).
#ifndef TORCH_EXTENSION_NAME
#define TORCH_EXTENSION_NAME moegate_launcher
#endif
#define MOEGATE_CONCAT_(a, b) a##b
#define MOEGATE_CONCAT(a, b) MOEGATE_CONCAT_(a, b)
#define MOEGATE_STRING_(a) #a
#define MOEGATE_STRING(a) MOEGATE_STRING_(a)

PyMODINIT_FUNC MOEGATE_CONCAT(PyInit_, TORCH_EXTENSION_NAME)() {
  static PyModuleDef module = {PyModuleDef_HEAD_INIT, MOEGATE_STRING(TORCH_EXTENSION_NAME),
                               "moegate's compiled launcher (optimized/kernels/launcher.cpp)", -1, methods};
  return PyModule_Create(&module);
}
