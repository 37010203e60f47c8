// The ViT forward on a CUDA device (SPEC "Model in the loop"): the products through cuBLAS,
// LayerNorm, GELU, attention with the proportional bias and the merge hook's application in
// kernels (kernels/vit.cu). FP32 (no TF32) or FP16 storage with FP32 accumulation. The merge
// decisions are the CPU hook's own (hook.h), from the keys, entropies and class attention the
// device computed, so one method means one algorithm on both backends.
#pragma once

#include "qmpp/lm.h"
#include "qmpp/vit.h"

#include <memory>
#include <string>
#include <vector>

namespace qmpp {

// A CUDA build and a device: true; else false with the reason in *why.
bool gpuForwardAvailable(std::string* why = nullptr);

class VitGpu {
  public:
    // Uploads the weights in the precision asked for (fp16: half storage). Throws
    // std::runtime_error when there is no device or the build has no CUDA.
    VitGpu(std::shared_ptr<const VitModel> model, bool fp16);
    ~VitGpu();
    VitGpu(const VitGpu&) = delete;
    VitGpu& operator=(const VitGpu&) = delete;

    // pixels [batch, C, H, W], normalized. Item b takes Gumbel offsets as item item0 + b
    // (vitForward's rule), so a batch gives the same decisions as items one by one.
    std::vector<ForwardResult> forward(const float* pixels, i64 batch, const HookParams& hp,
                                       i64 item0 = 0, const ForwardOptions& opt = {});
    const char* precision() const; // "fp32" or "fp16"
    std::string device() const;    // the device's name

  private:
    struct Impl;
    std::unique_ptr<Impl> m_impl;
};

} // namespace qmpp

#include <iosfwd>

namespace qmpp {

// One line of checkVitGpu.
struct GpuModelCheck {
    std::string what;        // "layerNorm fp16", "forward tome r=8 fp32", ...
    double err = 0, tol = 0; // the error measured and the largest allowed
    bool pass = false;
    std::string note; // e.g. "decisions equal in 16/16 items"
};
// What `qmpp check --model` runs on a device: every kernel of the GPU forward on random data in
// both precisions against a float64 reference computed from the inputs as the device holds
// them; then the forward of pixels [count, C, H, W] with every method on the GPU against the
// CPU forward: FP32 (no TF32) within 1e-4 relative on the logits, FP16 within 2e-2 unmerged
// and with top-1 agreement >= 90 % merged. Lines are printed to `log` as they finish.
std::vector<GpuModelCheck> checkVitGpu(const std::shared_ptr<const VitModel>& model,
                                       const float* pixels, i64 count, std::ostream& log);

} // namespace qmpp

namespace qmpp {

// The language model's forward on a CUDA device, one sequence at a time, with the CPU's prefix
// decision (lmmodel.h) between its attention and MLP.
class LmGpu {
  public:
    LmGpu(std::shared_ptr<const LmModel> model, bool fp16);
    ~LmGpu();
    LmGpu(const LmGpu&) = delete;
    LmGpu& operator=(const LmGpu&) = delete;
    LmResult forward(const std::vector<i64>& ids, const PrefixMerge& merge = {}, i64 item = 0);
    const char* precision() const;
    std::string device() const;

  private:
    struct Impl;
    std::unique_ptr<Impl> m_impl;
};

// `qmpp check --model` for a language model: GPU against CPU on these ids, unmerged and with
// each prefix method, FP32 within 1e-4 relative on the logits, FP16 on the losses within 1e-2.
std::vector<GpuModelCheck> checkLmGpu(const std::shared_ptr<const LmModel>& model,
                                      const std::vector<i64>& ids, std::ostream& log);

} // namespace qmpp
