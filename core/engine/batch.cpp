// The merge step's shape rules (qmpp/batch.h).
#include "qmpp/batch.h"
#include "qmpp/engine.h"
#include "qmpp/error.h"

#include <algorithm>
#include <string>

namespace qmpp {

const char* toString(Memory m) {
    return m == Memory::Host ? "host" : "device";
}

i64 StepParams::kMax() const {
    return k.empty() ? 0 : *std::max_element(k.begin(), k.end());
}

void validateStep(const TokenBatch& in, const StepParams& p, const StepOutput& out, Memory stages) {
    auto fail = [](const std::string& what) { throw UsageError("merge step: " + what); };
    if (in.b < 1 || in.n < 1 || in.d < 1)
        fail("the batch is [" + std::to_string(in.b) + ", " + std::to_string(in.n) + ", " +
             std::to_string(in.d) + "]; every side must be at least 1");
    if (in.d > kMaxTokenDim) fail("D = " + std::to_string(in.d) + " is over the limit");
    if (in.memory != stages)
        fail(std::string("the tensors are in ") + toString(in.memory) + " memory, but these " +
             "stages take " + toString(stages) + " memory");
    if (!in.x || !out.merged || !out.counts || !out.labels)
        fail("x, merged, counts and labels are required");
    if (in.metric && in.metricDim < 0) fail("metricDim is negative");
    if (!in.itemN.empty() && i64(in.itemN.size()) != in.b)
        fail("itemN has " + std::to_string(in.itemN.size()) +
             " entries for B = " + std::to_string(in.b));
    if (i64(p.k.size()) != in.b)
        fail("k has " + std::to_string(p.k.size()) + " entries for B = " + std::to_string(in.b));
    if (!p.offset.empty() && i64(p.offset.size()) != in.b)
        fail("offset has " + std::to_string(p.offset.size()) +
             " entries for B = " + std::to_string(in.b));
    if (in.keepFirst < 0) fail("keepFirst is negative");
    if (p.method == Method::ToMe && in.keepFirst > 1)
        fail("ToMe protects one class token; keepFirst is " + std::to_string(in.keepFirst));
    const bool needsSaliency = p.method == Method::QuickMerge || p.method == Method::TopK;
    if (needsSaliency && !in.saliency && !in.entropy)
        fail(std::string(toString(p.method)) + " needs a saliency or the attention entropies");
    if (!(p.temperature >= kMinTemperature)) fail("the temperature is below 1e-6 (or NaN)");
    if (!(p.epsilon >= 0 && p.epsilon <= 1)) fail("epsilon is outside [0, 1]");
    if (!(p.gumbelScale >= 0 && p.gumbelScale <= 1e6)) fail("the Gumbel scale is outside [0, 1e6]");
    for (i64 i = 0; i < in.b; ++i) {
        const i64 n = in.itemTokens(i), k = p.k[std::size_t(i)];
        const std::string item = "item " + std::to_string(i);
        if (n < 1 || n > in.n)
            fail(item + " has " + std::to_string(n) + " tokens; it must have 1.." +
                 std::to_string(in.n));
        if (n <= in.keepFirst)
            fail(item + " has " + std::to_string(n) + " tokens, no more than the " +
                 std::to_string(in.keepFirst) + " kept first");
        if (k <= in.keepFirst || k > n)
            fail(item + ": k = " + std::to_string(k) + " must be in " +
                 std::to_string(in.keepFirst + 1) + ".." + std::to_string(n));
        if (p.method == Method::ToMe && n - k > (n - in.keepFirst) / 2)
            fail(item + ": ToMe merges at most " + std::to_string((n - in.keepFirst) / 2) + " of " +
                 std::to_string(n) + " tokens in one round, not " + std::to_string(n - k));
    }
}

} // namespace qmpp
