// _qmpp: the engine for Python (pybind11). The package qmpp (qmpp/__init__.py) wraps it; this
// file converts: arrays in (NumPy, or any DLPack producer), views of the result's vectors out,
// the engine's errors to Python exceptions. The GIL is released while the engine works.
#include "qmpp/batch.h"
#include "qmpp/engine.h"
#include "qmpp/error.h"
#include "qmpp/evalout.h"
#include "qmpp/evaluate.h"
#include "qmpp/export.h"
#include "qmpp/hook.h"
#include "qmpp/inputs.h"
#include "qmpp/io.h"
#include "qmpp/report.h"
#include "qmpp/vitgpu.h"

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#ifdef QMPP_HAVE_DLPACK
#include <dlpack/dlpack.h>
#endif
#ifdef QMPP_PY_CUDA
#include "qmpp/cuda_backend.h"

#include <cuda_runtime_api.h>
#endif

#include <nlohmann/json.hpp>

#include <cstring>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

namespace py = pybind11;
using namespace qmpp;

namespace {

PyObject* g_usageError = nullptr;
PyObject* g_inputError = nullptr;

// ---- arrays in ---------------------------------------------------------------------------

// A NumPy array (C order is made here when needed) as the engine's NdArray, dtype kept: the
// engine's own checks (finite, in range, floating point) then apply with the CLI's messages.
NdArray toNdArray(const py::array& in, const std::string& name) {
    const py::array a = py::array::ensure(in, py::array::c_style);
    if (!a) throw UsageError(name + ": not an array");
    NdArray out;
    // the dtype's kind and size through Python's attributes: the C descriptor's layout changed
    // in numpy 2, and older pybind11 builds read it at the old offsets
    const py::object dt = a.attr("dtype");
    const auto kind = dt.attr("kind").cast<std::string>();
    const auto size = dt.attr("itemsize").cast<std::size_t>();
    if (kind == "f" && size == 4)
        out.dtype = DType::F32;
    else if (kind == "f" && size == 8)
        out.dtype = DType::F64;
    else if (kind == "f" && size == 2)
        out.dtype = DType::F16;
    else if (kind == "i" && size == 4)
        out.dtype = DType::I32;
    else if (kind == "i" && size == 8)
        out.dtype = DType::I64;
    else
        throw InputError(name + ": dtype " + py::str(dt).cast<std::string>() +
                         " is not supported (float16, float32 or float64)");
    std::size_t count = 1;
    for (py::ssize_t i = 0; i < a.ndim(); ++i) {
        out.shape.push_back(static_cast<std::int64_t>(a.shape(i)));
        count *= static_cast<std::size_t>(a.shape(i));
    }
    const auto* p = static_cast<const std::uint8_t*>(a.data());
    out.bytes.assign(p, p + count * size);
    return out;
}

#ifdef QMPP_HAVE_DLPACK
// A DLPack capsule ("dltensor", from obj.__dlpack__()) as a NumPy array: a view of CPU memory
// that keeps the producer's tensor alive, or a host copy of CUDA memory (builds with CUDA).
// The capsule is renamed "used_dltensor" as the protocol asks.
py::array fromDlpack(py::capsule cap) {
    if (std::strcmp(cap.name(), "dltensor") != 0)
        throw UsageError("from_dlpack: the capsule was already consumed or is not a DLPack tensor");
    auto* mt = static_cast<DLManagedTensor*>(cap.get_pointer());
    const DLTensor& t = mt->dl_tensor;
    std::string dtype;
    if (t.dtype.lanes != 1) throw InputError("from_dlpack: vector dtypes are not supported");
    if (t.dtype.code == kDLFloat &&
        (t.dtype.bits == 16 || t.dtype.bits == 32 || t.dtype.bits == 64))
        dtype = "float" + std::to_string(t.dtype.bits);
    else if (t.dtype.code == kDLInt && (t.dtype.bits == 32 || t.dtype.bits == 64))
        dtype = "int" + std::to_string(t.dtype.bits);
    else
        throw InputError("from_dlpack: dtype code " + std::to_string(t.dtype.code) + " of " +
                         std::to_string(t.dtype.bits) +
                         " bits is not supported (float16, "
                         "float32 or float64)");
    const std::size_t item = t.dtype.bits / 8;
    std::vector<py::ssize_t> shape(t.shape, t.shape + t.ndim), strides(shape.size());
    for (int i = 0; i < t.ndim; ++i)
        strides[i] = t.strides ? static_cast<py::ssize_t>(t.strides[i] * item) : 0;
    if (!t.strides) { // compact row-major
        py::ssize_t s = static_cast<py::ssize_t>(item);
        for (int i = t.ndim - 1; i >= 0; --i) {
            strides[i] = s;
            s *= shape[i];
        }
    }
    char* data = static_cast<char*>(t.data) + t.byte_offset;
    // the managed tensor lives as long as the arrays made from it
    py::capsule owner(mt, [](void* p) {
        auto* m = static_cast<DLManagedTensor*>(p);
        if (m->deleter) m->deleter(m);
    });
    PyCapsule_SetName(cap.ptr(), "used_dltensor");
    const py::dtype dt(dtype);
    if (t.device.device_type == kDLCPU || t.device.device_type == kDLCUDAHost)
        return py::array(dt, shape, strides, data, owner);
    if (t.device.device_type == kDLCUDA || t.device.device_type == kDLCUDAManaged) {
#ifdef QMPP_PY_CUDA
        py::ssize_t count = 1;
        for (auto s : shape)
            count *= s;
        std::vector<py::ssize_t> compact(shape.size());
        py::ssize_t s = static_cast<py::ssize_t>(item);
        for (int i = t.ndim - 1; i >= 0; --i) {
            compact[i] = s;
            s *= shape[i];
        }
        for (int i = 0; i < t.ndim; ++i)
            if (shape[i] > 1 && strides[i] != compact[i])
                throw UsageError("from_dlpack: a CUDA tensor must be contiguous (call "
                                 ".contiguous() first)");
        py::array host(dt, shape, compact);
        int prev = 0;
        cudaGetDevice(&prev);
        cudaSetDevice(t.device.device_id);
        const cudaError_t e =
            cudaMemcpy(host.mutable_data(), data, count * item, cudaMemcpyDeviceToHost);
        cudaSetDevice(prev);
        if (e != cudaSuccess)
            throw RuntimeFailure(std::string("from_dlpack: copying the CUDA tensor failed: ") +
                                 cudaGetErrorString(e));
        return host;
#else
        throw UsageError("from_dlpack: this build of qmpp has no CUDA; move the tensor to the "
                         "CPU first (tensor.cpu())");
#endif
    }
    throw UsageError("from_dlpack: tensors on device type " + std::to_string(t.device.device_type) +
                     " are not supported");
}
#endif

// ---- arrays out: views of vectors the Python object owns ----------------------------------

template <class T>
py::array view(const py::object& owner, const std::vector<T>& v, std::vector<py::ssize_t> shape) {
    py::ssize_t n = 1;
    for (auto s : shape)
        n *= s;
    if (static_cast<std::size_t>(n) != v.size()) shape = {static_cast<py::ssize_t>(v.size())};
    return py::array_t<T>(shape, v.data(), owner);
}

py::object jsonToPython(const nlohmann::ordered_json& j) {
    return py::module_::import("json").attr("loads")(j.dump());
}

// ---- merge --------------------------------------------------------------------------------

std::uint64_t seedFrom(const py::dict& d) {
    const auto seed = d["seed"].cast<long long>();
    if (seed < 0) throw UsageError("seed: a Philox seed is a whole number >= 0");
    return static_cast<std::uint64_t>(seed);
}

MergeParams paramsFrom(const py::dict& d) {
    MergeParams p;
    auto str = [&](const char* k) { return d[k].cast<std::string>(); };
    p.k = d["k"].cast<i64>();
    p.budget = d["budget"].cast<double>();
    p.temperature = d["temperature"].cast<double>();
    p.epsilon = d["epsilon"].cast<double>();
    p.gamma = d["gamma"].cast<double>();
    p.alpha = d["alpha"].cast<double>();
    p.layers = d["layers"].cast<int>();
    p.refine = d["refine"].cast<int>();
    p.seed = seedFrom(d);
    if (p.k < 0) throw UsageError("k (--tokens): K must be at least 1");
    if (!parse(str("method"), p.method))
        throw UsageError("method: '" + str("method") +
                         "' is not one of quickmerge, tome, topk, random");
    if (!parse(str("cluster"), p.cluster))
        throw UsageError("cluster: '" + str("cluster") +
                         "' is not one of seeded, agglomerative, reference");
    if (!parse(str("backend"), p.backend))
        throw UsageError("backend: '" + str("backend") +
                         "' is not one of auto, cpu, cuda-basic, cuda");
    if (!parse(str("precision"), p.precision))
        throw UsageError("precision: '" + str("precision") + "' is not one of fp32, fp16");
    if (p.precision == Precision::FP16 && p.backend == BackendKind::Cpu)
        throw UsageError("--precision fp16 needs a CUDA backend; the CPU backend runs fp32");
    return p;
}

// One merged item and what `save` needs to write the run as `qmpp run` writes it.
struct PyResult {
    MergeResult r;
    std::shared_ptr<const LoadedInput> input; // every item of the input (exportRun wants them)
    i64 item = 0;
    std::string inputPath;
    InputOptions options;
    MergeParams params;
    std::string uniformsPath;

    RunRecord record() const {
        RunRecord run;
        run.inputPath = inputPath;
        run.inputOptions = options;
        if (input->items.size() > 1) run.inputOptions.batch = item;
        run.input = input.get();
        run.params = params;
        run.params.progress = {};
        run.uniformsPath = uniformsPath;
        run.results = {r};
        return run;
    }
};

// A read-only attribute `name` of the result: a view of one of its vectors, shaped by `shape`.
template <class T, class ShapeOf>
void viewProperty(py::class_<PyResult>& cls, const char* name, std::vector<T> MergeResult::*field,
                  ShapeOf shape) {
    cls.def_property_readonly(name, [field, shape](py::object self) {
        const MergeResult& r = self.cast<const PyResult&>().r;
        return view(self, r.*field, shape(r));
    });
}

// Runs every item (the GIL released) into results that share the input.
std::vector<PyResult> mergeAll(std::shared_ptr<LoadedInput> in, const MergeParams& p,
                               const std::string& inputPath, const InputOptions& opt,
                               const std::string& uniformsPath) {
    std::vector<PyResult> out(in->items.size());
    {
        py::gil_scoped_release nogil;
        for (std::size_t i = 0; i < in->items.size(); ++i)
            out[i].r = runMerge(in->items[i], p);
    }
    for (std::size_t i = 0; i < out.size(); ++i) {
        out[i].input = in;
        out[i].item = static_cast<i64>(i);
        out[i].inputPath = inputPath;
        out[i].options = opt;
        out[i].params = p;
        out[i].uniformsPath = uniformsPath;
    }
    return out;
}

std::shared_ptr<const ArHeads> arHeadsFor(const std::string& path, i64 d) {
    return path.empty() ? nullptr : loadArHeads(path, d);
}

// What qmpp.load and qmpp.merge on a file share of the CLI's input options.
InputOptions fileOptions(const py::dict& opts) {
    InputOptions opt;
    opt.patch = opts["patch"].cast<int>();
    opt.key = opts["key"].cast<std::string>();
    opt.labels = opts["labels"].cast<std::string>();
    opt.projection = opts["projection"].cast<std::string>();
    return opt;
}

// qmpp run on a file: the CLI's loading (its own hidden states and attentions unless
// tokens_only), then the engine.
std::vector<PyResult> mergeFile(const std::string& path, const py::dict& opts,
                                const py::dict& params) {
    MergeParams p = paramsFrom(params);
    InputOptions opt = fileOptions(opts);
    opt.batch = opts["batch"].cast<i64>();
    opt.hidden = opts["hidden_states"].cast<std::string>();
    opt.attention = opts["attention"].cast<std::string>();
    if (!opts["tokens_only"].cast<bool>()) attachOwnTensors(path, opt);
    const std::string uniforms = opts["uniforms"].cast<std::string>();
    auto in = std::make_shared<LoadedInput>(loadInput(path, opt));
    if (!uniforms.empty()) p.uniforms = loadUniforms(uniforms);
    p.arHeads = arHeadsFor(opts["ar_weights"].cast<std::string>(), in->items[0].d);
    return mergeAll(in, p, path, opt, uniforms);
}

// The same from arrays: tokens [N, D] or [B, N, D], optional hidden states, attention maps,
// labels and uniforms. Messages name `name` where the CLI names the file.
std::vector<PyResult> mergeArrays(const py::array& tokens, const py::object& hidden,
                                  const py::object& attention, const py::object& labels,
                                  const py::object& uniforms, const std::string& arWeights,
                                  const py::dict& params, i64 batch) {
    MergeParams p = paramsFrom(params);
    auto in =
        std::make_shared<LoadedInput>(tokenSets(toNdArray(tokens, "tokens"), "tokens", batch));
    if (!hidden.is_none() || !attention.is_none()) {
        if (in->items.size() > 1)
            throw UsageError("hidden states and attention maps belong to one token set: pick an "
                             "item of the batch with batch=");
        if (!hidden.is_none())
            attachHidden(in->items[0], toNdArray(hidden.cast<py::array>(), "hidden_states"),
                         "hidden_states");
        if (!attention.is_none())
            attachAttention(in->items[0], toNdArray(attention.cast<py::array>(), "attention"),
                            "attention");
    }
    if (!labels.is_none())
        attachLabels(in->items, labels.cast<std::vector<std::string>>(), "labels");
    if (!uniforms.is_none()) {
        const NdArray u = toNdArray(uniforms.cast<py::array>(), "uniforms");
        if (u.ndim() != 1)
            throw InputError("uniforms: uniforms must be 1-D [N], got " + u.shapeString());
        p.uniforms = u.toFloat();
    }
    p.arHeads = arHeadsFor(arWeights, in->items[0].d);
    return mergeAll(in, p, "<array>", InputOptions{}, "");
}

// ---- tensors to and from our files --------------------------------------------------------

py::dict loadFile(const std::string& path, const py::dict& opts) {
    InputOptions opt = fileOptions(opts);
    if (!opts["tokens_only"].cast<bool>()) attachOwnTensors(path, opt);
    LoadedInput in;
    {
        py::gil_scoped_release nogil;
        in = loadInput(path, opt);
    }
    const TokenSet& t0 = in.items[0];
    py::dict d;
    const i64 b = static_cast<i64>(in.items.size());
    py::array_t<float> tokens(in.batched ? std::vector<py::ssize_t>{b, t0.n, t0.d}
                                         : std::vector<py::ssize_t>{t0.n, t0.d});
    float* dst = tokens.mutable_data();
    for (const auto& t : in.items)
        dst = std::copy(t.x.begin(), t.x.end(), dst);
    d["tokens"] = tokens;
    d["hidden_states"] = py::none();
    d["attention"] = py::none();
    if (!t0.hidden.empty()) {
        py::array_t<float> h({t0.hiddenLayers, t0.n, t0.d});
        std::copy(t0.hidden.begin(), t0.hidden.end(), h.mutable_data());
        d["hidden_states"] = h;
    }
    if (!t0.attention.empty()) {
        py::array_t<float> a({t0.attnLayers, t0.attnHeads, t0.n, t0.n});
        std::copy(t0.attention.begin(), t0.attention.end(), a.mutable_data());
        d["attention"] = a;
    }
    d["labels"] = t0.labels.empty() ? py::object(py::none()) : py::cast(t0.labels);
    d["grid"] = t0.gridRows > 0 ? py::object(py::make_tuple(t0.gridRows, t0.gridCols))
                                : py::object(py::none());
    d["kind"] = in.kind == InputKind::Image ? "image" : "embeddings";
    d["image"] = py::none();
    if (in.image) {
        py::array_t<std::uint8_t> rgb({in.image->height, in.image->width, 3});
        std::copy(in.image->rgb.begin(), in.image->rgb.end(), rgb.mutable_data());
        d["image"] = rgb;
    }
    return d;
}

void saveFile(const std::string& path, const py::dict& tensors, const py::dict& metadata,
              bool force) {
    const std::string ext = fileExtension(path);
    if (ext != ".npy" && ext != ".safetensors")
        throw UsageError(path + ": save writes .npy (one array) or .safetensors");
    if (!force && std::ifstream(path).good())
        throw InputError(path + ": exists; use force=True to replace it");
    if (ext == ".npy") {
        if (tensors.size() != 1 || !metadata.empty())
            throw UsageError(path + ": a .npy file holds one array and no metadata; use "
                                    ".safetensors for several");
        const auto item = *tensors.begin();
        writeNpy(path, toNdArray(item.second.cast<py::array>(), item.first.cast<std::string>()));
        return;
    }
    TensorFile f;
    for (const auto& [k, v] : tensors)
        f.tensors.emplace_back(k.cast<std::string>(),
                               toNdArray(v.cast<py::array>(), k.cast<std::string>()));
    for (const auto& [k, v] : metadata)
        f.metadata[k.cast<std::string>()] = v.cast<std::string>();
    writeSafetensors(path, f);
}

// ---- a model with merging inside ------------------------------------------------------------

HookParams hookParamsFrom(const py::dict& d, i64 depth) {
    HookParams hp;
    const std::string method = d["method"].cast<std::string>();
    if (!parse(method, hp.method))
        throw UsageError("method: '" + method +
                         "' is not one of none, quickmerge, tome, topk, random");
    hp.temperature = d["temperature"].cast<double>();
    hp.epsilon = d["epsilon"].cast<double>();
    hp.gumbelScale = d["gumbel_scale"].cast<double>();
    hp.refine = d["refine"].cast<int>();
    hp.seed = seedFrom(d);
    validate(hp);
    hp.schedule = scheduleFrom(d["r"].cast<std::string>(), d["schedule"].cast<std::string>(),
                               d["list"].cast<std::string>(), d["budget"].cast<double>(),
                               d["at_block"].cast<i64>(), depth);
    if (hp.method != ModelMethod::None && hp.schedule.kind == Schedule::Kind::None)
        throw UsageError("--method " + method +
                         " needs how much to merge: --r, --schedule, --list or --budget");
    return hp;
}

py::dict evalModel(const std::string& modelPath, const std::string& input, bool dataset,
                   const py::dict& hookArgs, const std::string& seeds, i64 limit, i64 heads,
                   const std::string& backend, const std::string& out, bool force, i64 overlays) {
    if (backend != "auto" && backend != "cpu" && backend != "cuda")
        throw UsageError("backend: '" + backend + "' is not one of auto, cpu, cuda");
    const std::vector<std::uint64_t> seedList = parseSeeds(seeds);
    if (!out.empty()) OutputDir::checkTarget(out, force);
    std::shared_ptr<const VitModel> model;
    {
        py::gil_scoped_release nogil;
        model = loadVit(modelPath, heads);
    }
    const VitConfig& cfg = config(*model);
    const HookParams hp = hookParamsFrom(hookArgs, cfg.depth);
    EvalItems items;
    EvalRun run;
    {
        py::gil_scoped_release nogil;
        std::string why;
        const bool haveGpu = gpuForwardAvailable(&why);
        if (backend == "cuda" && !haveGpu) throw RuntimeFailure("eval backend cuda: " + why);
        std::unique_ptr<VitGpu> vg;
        EvalDevice dev;
        if (backend == "cuda" || (backend == "auto" && haveGpu)) {
            vg = std::make_unique<VitGpu>(model, false);
            dev.gpu = vg.get();
        }
        items = loadEvalItems(input, cfg, dataset, limit);
        run = evaluate(*model, items, hp, seedList, {}, nullptr, dev);
        if (!out.empty()) {
            OutputDir dir(out, force);
            writeEvalFiles(dir.tempDir(), run, cfg, items, hp, modelPath);
            if (overlays > 0) writeEvalOverlays(dir.tempDir(), *model, items, hp, overlays);
            dir.commit();
        }
    }
    // eval.json's document, with the logits and labels as arrays
    py::dict d =
        jsonToPython(nlohmann::ordered_json::parse(evalJson(run, cfg, items, hp, modelPath)));
    const i64 count = items.count, classes = cfg.classes;
    py::array_t<float> plain({count, classes});
    std::copy(run.plainLogits.begin(), run.plainLogits.end(), plain.mutable_data());
    py::array_t<float> merged({static_cast<i64>(run.mergedLogits.size()), count, classes});
    float* m = merged.mutable_data();
    for (const auto& l : run.mergedLogits)
        m = std::copy(l.begin(), l.end(), m);
    d["logits_plain"] = plain;
    d["logits_merged"] = merged;
    d["labels"] =
        py::array_t<i64>(static_cast<py::ssize_t>(items.labels.size()), items.labels.data());
    return d;
}

// One merge step on a batch in place in the caller's memory (qmpp.merge_step): host arrays or a
// CUDA device's tensors, given as addresses the package took from them after checking their
// shapes, dtypes and devices. Outputs are the caller's too, so a CUDA tensor never leaves its
// device. `a` holds the addresses and sizes, `p` the method's parameters.
void mergeStepAt(const py::dict& a, const py::dict& p) {
    auto ptr = [&](const char* key) {
        return reinterpret_cast<void*>(a[key].cast<std::uintptr_t>());
    };
    TokenBatch in;
    in.b = a["b"].cast<i64>();
    in.n = a["n"].cast<i64>();
    in.d = a["d"].cast<i64>();
    const bool device = a["device"].cast<int>() >= 0;
    in.memory = device ? Memory::Device : Memory::Host;
    in.precision = a["fp16"].cast<bool>() ? Precision::FP16 : Precision::FP32;
    in.x = ptr("x");
    in.metric = ptr("metric");
    in.metricDim = a["metric_dim"].cast<i64>();
    in.counts = static_cast<const float*>(ptr("counts"));
    in.saliency = static_cast<const float*>(ptr("saliency"));
    in.entropy = static_cast<const float*>(ptr("entropy"));
    in.itemN = a["item_n"].cast<std::vector<i64>>();
    in.keepFirst = a["keep_first"].cast<i64>();
    StepParams sp;
    const std::string method = p["method"].cast<std::string>();
    if (!parse(method, sp.method))
        throw UsageError("method: '" + method + "' is not one of quickmerge, tome, topk, random");
    sp.k = a["k"].cast<std::vector<i64>>();
    sp.temperature = p["temperature"].cast<double>();
    sp.epsilon = p["epsilon"].cast<double>();
    sp.gumbelScale = p["gumbel_scale"].cast<double>();
    sp.seed = seedFrom(p);
    sp.offset = p["offsets"].cast<std::vector<std::uint64_t>>();
    sp.refine = p["refine"].cast<int>();
    StepOutput out;
    out.merged = ptr("out_merged");
    out.counts = static_cast<float*>(ptr("out_counts"));
    out.labels = static_cast<std::int32_t*>(ptr("out_labels"));
    out.saliency = static_cast<float*>(ptr("out_saliency"));
    out.mass = static_cast<float*>(ptr("out_mass"));
    std::unique_ptr<BatchStages> stages;
    if (device) {
#ifdef QMPP_PY_CUDA
        const cudaError_t e = cudaSetDevice(a["device"].cast<int>());
        if (e != cudaSuccess)
            throw RuntimeFailure(std::string("merge_step: ") + cudaGetErrorString(e));
        stages = makeCudaBatchStages(true);
#else
        throw UsageError("merge_step: this build of qmpp has no CUDA; move the tensors to the CPU");
#endif
    } else {
        stages = makeCpuBatchStages();
    }
    py::gil_scoped_release nogil;
    mergeStep(*stages, in, sp, out);
}

// One image through the model with the forward's trace: per block, the tokens entering, each
// query's attention entropy (mean over heads), the merge (newRow, weight), counts and sources.
py::dict traceForward(const std::string& modelPath, const py::array& pixels,
                      const py::dict& hookArgs, i64 item) {
    const auto model = loadVit(modelPath);
    const VitConfig& cfg = config(*model);
    const HookParams hp = hookParamsFrom(hookArgs, cfg.depth);
    const NdArray px = toNdArray(pixels, "pixels");
    if (px.numel() != cfg.channels * cfg.imageSize * cfg.imageSize)
        throw UsageError("pixels: the model takes [" + std::to_string(cfg.channels) + ", " +
                         std::to_string(cfg.imageSize) + ", " + std::to_string(cfg.imageSize) +
                         "], got " + px.shapeString());
    const std::vector<float> v = px.toFloat();
    ForwardTrace trace;
    ForwardOptions opt;
    opt.trace = &trace;
    ForwardResult res;
    {
        py::gil_scoped_release nogil;
        res = vitForward(*model, v.data(), hp, item, opt);
    }
    py::list blocks;
    for (const BlockTrace& b : trace.blocks) {
        py::dict d;
        d["tokens"] = b.tokens;
        d["tokens_out"] = b.tokensOut;
        d["entropy"] =
            py::array_t<double>(static_cast<py::ssize_t>(b.entropy.size()), b.entropy.data());
        d["new_row"] =
            py::array_t<std::int32_t>(static_cast<py::ssize_t>(b.newRow.size()), b.newRow.data());
        d["weight"] =
            py::array_t<float>(static_cast<py::ssize_t>(b.weight.size()), b.weight.data());
        d["counts"] =
            py::array_t<float>(static_cast<py::ssize_t>(b.counts.size()), b.counts.data());
        d["owner"] =
            py::array_t<std::int32_t>(static_cast<py::ssize_t>(b.owner.size()), b.owner.data());
        d["attention"] = py::array_t<float>({cfg.heads, b.tokens, b.tokens}, b.attention.data());
        d["ms"] = b.ms;
        blocks.append(d);
    }
    py::dict out;
    out["logits"] =
        py::array_t<float>(static_cast<py::ssize_t>(res.logits.size()), res.logits.data());
    out["blocks"] = blocks;
    return out;
}

// The merge hook of a model's blocks, one state per image of a batch (qmpp.patch.timm): the
// decisions vitForward makes, applied to the caller's residual stream.
class PyHook {
  public:
    PyHook(i64 depth, i64 patches, i64 dim, i64 heads, const py::dict& hookArgs, i64 batch,
           i64 firstItem)
        : m_batch(batch) {
        if (depth < 1 || patches < 1 || dim < 1 || heads < 1 || dim % heads != 0)
            throw UsageError("patch: the model's depth, patches, dim and heads must be positive "
                             "with heads dividing dim");
        if (batch < 1) throw UsageError("patch: an empty batch");
        m_cfg.name = "patched";
        m_cfg.depth = depth;
        m_cfg.patches = patches;
        m_cfg.dim = dim;
        m_cfg.heads = heads;
        m_hp = hookParamsFrom(hookArgs, depth);
        for (i64 b = 0; b < batch; ++b)
            m_states.push_back(std::make_unique<HookState>(m_cfg, m_hp, firstItem + b, true));
    }
    i64 tokens() const { return m_states[0]->tokens(); }
    i64 mergeCount(i64 block) const {
        checkBlock(block);
        return m_states[0]->mergeCount(block);
    }
    py::tuple needs(i64 block) const {
        const HookNeeds n = hookNeeds(m_hp.method, mergeCount(block));
        return py::make_tuple(n.entropy, n.clsAttn);
    }
    // counts [B, T] (patches per row)
    py::array counts() const {
        const i64 t = tokens();
        py::array_t<float> out({m_batch, t});
        float* p = out.mutable_data();
        for (const auto& s : m_states)
            p = std::copy(s->counts().begin(), s->counts().end(), p);
        return out;
    }
    // owner [B, N]: the row that holds each patch, -1 dropped
    py::array sources() const {
        py::array_t<std::int32_t> out({m_batch, m_cfg.patches});
        std::int32_t* p = out.mutable_data();
        for (const auto& s : m_states)
            p = std::copy(s->owner().begin(), s->owner().end(), p);
        return out;
    }
    // The merge of block `block` for every image, decided from the keys averaged over heads
    // keysMean [B, T, dh] (ToMe's metric) and, as needs() said, the attention entropy and the
    // class token's attention [B, T] (means over heads); the counts and sources move on. Returns
    // (newRow [B, T] int32, weight [B, T] float32, T after): row i goes to row newRow[i] (-1:
    // dropped), each output row the weighted mean of its rows (plain mean where weights sum to 0).
    py::tuple plan(i64 block,
                   const py::array_t<float, py::array::c_style | py::array::forcecast>& keysMean,
                   const py::object& entropy, const py::object& cls) {
        const i64 r = mergeCount(block), t = tokens(), dh = m_cfg.dim / m_cfg.heads;
        auto shapeIs = [](const py::array& a, std::vector<i64> s) {
            if (a.ndim() != static_cast<py::ssize_t>(s.size())) return false;
            for (std::size_t i = 0; i < s.size(); ++i)
                if (a.shape(i) != s[i]) return false;
            return true;
        };
        if (!shapeIs(keysMean, {m_batch, t, dh}))
            throw UsageError("patch: block " + std::to_string(block) + " expects keys [" +
                             std::to_string(m_batch) + ", " + std::to_string(t) + ", " +
                             std::to_string(dh) + "] averaged over heads");
        const HookNeeds n = hookNeeds(m_hp.method, r);
        auto perItem = [&](const py::object& o, bool need, const char* what) {
            std::vector<std::vector<double>> v(static_cast<std::size_t>(m_batch));
            if (!need) return v;
            if (o.is_none())
                throw UsageError(std::string("patch: block ") + std::to_string(block) + " needs " +
                                 what);
            const auto a = o.cast<py::array_t<double, py::array::c_style | py::array::forcecast>>();
            if (!shapeIs(a, {m_batch, t}))
                throw UsageError(std::string("patch: bad shape of ") + what);
            for (i64 b = 0; b < m_batch; ++b)
                v[b].assign(a.data() + b * t, a.data() + (b + 1) * t);
            return v;
        };
        const auto ent = perItem(entropy, n.entropy, "the attention entropy");
        const auto cl = perItem(cls, n.clsAttn, "the class token's attention");
        py::array_t<std::int32_t> rows({m_batch, t});
        py::array_t<float> weights({m_batch, t});
        std::int32_t* rp = rows.mutable_data();
        float* wp = weights.mutable_data();
        const float* km = keysMean.data();
        {
            py::gil_scoped_release nogil;
            for (i64 b = 0; b < m_batch; ++b) {
                MergePlan p;
                if (r > 0) {
                    p = m_states[b]->plan(block, r, km + b * t * dh, ent[b], cl[b]);
                    m_states[b]->commit(p);
                } else {
                    p.newRow.resize(static_cast<std::size_t>(t));
                    for (i64 i = 0; i < t; ++i)
                        p.newRow[i] = static_cast<std::int32_t>(i);
                    p.weight.assign(static_cast<std::size_t>(t), 1.0f);
                }
                std::copy(p.newRow.begin(), p.newRow.end(), rp + b * t);
                std::copy(p.weight.begin(), p.weight.end(), wp + b * t);
            }
        }
        return py::make_tuple(rows, weights, t - r);
    }

  private:
    VitConfig m_cfg;
    HookParams m_hp;
    i64 m_batch;
    std::vector<std::unique_ptr<HookState>> m_states;
    void checkBlock(i64 block) const {
        if (block < 0 || block >= m_cfg.depth)
            throw UsageError("patch: block " + std::to_string(block) + " of a model of " +
                             std::to_string(m_cfg.depth));
    }
};

} // namespace

PYBIND11_MODULE(_qmpp, m) {
    m.doc() = "QuickMerge++ engine (the compiled part of the qmpp package)";

    // UsageError is a ValueError; InputError (a bad file or array) both an OSError and a
    // ValueError; RuntimeFailure a RuntimeError. Messages are the CLI's.
    g_usageError = PyErr_NewException("qmpp.UsageError", PyExc_ValueError, nullptr);
    py::tuple inputBases = py::make_tuple(py::handle(PyExc_OSError), py::handle(PyExc_ValueError));
    g_inputError = PyErr_NewException("qmpp.InputError", inputBases.ptr(), nullptr);
    m.attr("UsageError") = py::handle(g_usageError);
    m.attr("InputError") = py::handle(g_inputError);
    py::register_exception_translator([](std::exception_ptr p) {
        try {
            if (p) std::rethrow_exception(p);
        } catch (const UsageError& e) {
            PyErr_SetString(g_usageError, e.what());
        } catch (const InputError& e) {
            PyErr_SetString(g_inputError, e.what());
        } catch (const Cancelled& e) {
            PyErr_SetString(PyExc_KeyboardInterrupt, e.what());
        } catch (const RuntimeFailure& e) {
            PyErr_SetString(PyExc_RuntimeError, e.what());
        }
    });

    py::class_<PyResult> result(m, "_Result");
    using Shape = std::vector<py::ssize_t>;
    auto flat = [](auto field) {
        return [field](const MergeResult& r) {
            return Shape{static_cast<py::ssize_t>((r.*field).size())};
        };
    };
    viewProperty(result, "merged", &MergeResult::merged, [](const MergeResult& r) {
        return Shape{r.k, r.d};
    });
    viewProperty(result, "labels", &MergeResult::labels, flat(&MergeResult::labels));
    viewProperty(result, "saliency", &MergeResult::saliency, flat(&MergeResult::saliency));
    viewProperty(result, "mask", &MergeResult::pi, flat(&MergeResult::pi));
    viewProperty(result, "uniforms", &MergeResult::uniforms, flat(&MergeResult::uniforms));
    viewProperty(result, "mass", &MergeResult::mass, flat(&MergeResult::mass));
    viewProperty(result, "foreground", &MergeResult::foreground, flat(&MergeResult::foreground));
    viewProperty(result, "group_sizes", &MergeResult::groupSizes, flat(&MergeResult::groupSizes));
    viewProperty(result, "layer_entropy", &MergeResult::layerEntropy, [](const MergeResult& r) {
        const i64 l = r.n ? static_cast<i64>(r.layerEntropy.size()) / r.n : 0;
        return Shape{l, r.n};
    });
    result.def_property_readonly("n", [](const PyResult& r) { return r.r.n; })
        .def_property_readonly("d", [](const PyResult& r) { return r.r.d; })
        .def_property_readonly("k", [](const PyResult& r) { return r.r.k; })
        .def_property_readonly("item", [](const PyResult& r) { return r.item; })
        .def_property_readonly("batched", [](const PyResult& r) { return r.input->batched; })
        .def_property_readonly(
            "metrics", [](const PyResult& r) { return jsonToPython(metricsJson(r.r.metrics)); })
        .def_property_readonly(
            "losses", [](const PyResult& r) { return jsonToPython(lossesJson(r.r.losses)); })
        .def_property_readonly("timings",
                               [](const PyResult& r) {
                                   py::dict d;
                                   for (const auto& t : r.r.timings)
                                       d[py::str(t.stage)] = t.ms;
                                   return d;
                               })
        .def_property_readonly("method", [](const PyResult& r) { return r.r.method; })
        .def_property_readonly("backend", [](const PyResult& r) { return r.r.backend; })
        .def_property_readonly("device", [](const PyResult& r) { return r.r.device; })
        .def_property_readonly("precision", [](const PyResult& r) { return r.r.precision; })
        .def_property_readonly("saliency_source",
                               [](const PyResult& r) { return r.r.saliencySource; })
        .def_property_readonly("ar_heads_source",
                               [](const PyResult& r) { return r.r.arHeadsSource; })
        .def_property_readonly("refine_rounds", [](const PyResult& r) { return r.r.refineRounds; })
        .def_property_readonly("notes", [](const PyResult& r) { return r.r.notes; })
        .def("report", [](const PyResult& r) { return jsonToPython(runReport(r.record(), {})); })
        .def(
            "save",
            [](const PyResult& r, const std::string& dir, bool force) {
                const RunRecord run = r.record();
                py::gil_scoped_release nogil;
                return exportRun(dir, force, run);
            },
            py::arg("dir"), py::arg("force") = false);

    m.def("_merge_file", &mergeFile);
    m.def("_merge_arrays", &mergeArrays);
    m.def("_load", &loadFile);
    m.def("_save", &saveFile);
    m.def("_eval_model", &evalModel);
    m.def("_trace", &traceForward);
    m.def("_merge_step", &mergeStepAt);
#ifdef QMPP_HAVE_DLPACK
    m.def("_from_dlpack", &fromDlpack);
#endif
    m.def("_gpu_available", [] {
        std::string why;
        const bool ok = gpuAvailable(&why);
        return py::make_tuple(ok, why);
    });

    py::class_<PyHook>(m, "_Hook")
        .def(py::init<i64, i64, i64, i64, const py::dict&, i64, i64>())
        .def_property_readonly("tokens", &PyHook::tokens)
        .def("merge_count", &PyHook::mergeCount)
        .def("needs", &PyHook::needs)
        .def("counts", &PyHook::counts)
        .def("sources", &PyHook::sources)
        .def("plan", &PyHook::plan);
}
