#include "modelview.h"

#include "qmpp/evalout.h"
#include "qmpp/overlay.h"

#include <QObject>
#include <QPainter>

#include <algorithm>
#include <cmath>
#include <numeric>

namespace studio {

namespace {

qmpp::RgbImage toRgb(const QImage& img) {
    const QImage src = img.convertToFormat(QImage::Format_RGB888);
    qmpp::RgbImage out(src.width(), src.height());
    for (int y = 0; y < src.height(); ++y)
        std::copy(src.constScanLine(y), src.constScanLine(y) + 3 * src.width(), out.at(0, y));
    return out;
}

QImage toQImage(const qmpp::RgbImage& img) {
    return QImage(img.rgb.data(), img.width, img.height, 3 * img.width, QImage::Format_RGB888)
        .convertToFormat(QImage::Format_RGB32); // a deep copy
}

} // namespace

QImage modelInputImage(const qmpp::VitConfig& c, const float* pixels) {
    return toQImage(qmpp::modelInputPicture(c, pixels));
}

QImage sourcesImage(const QImage& input, const std::vector<std::int32_t>& owner, int grid,
                    int scale) {
    return toQImage(qmpp::tokenSourcesImage(toRgb(input), owner, grid, scale));
}

QImage heatImage(const QImage& input, const std::vector<double>& perPatch, int grid, int scale,
                 double alpha) {
    return toQImage(qmpp::patchHeatImage(toRgb(input), perPatch, grid, scale, alpha));
}

std::vector<std::pair<int, double>> topProbabilities(const std::vector<float>& logits, int k) {
    std::vector<double> p(logits.begin(), logits.end());
    if (p.empty()) return {};
    const double mx = *std::max_element(p.begin(), p.end());
    double sum = 0;
    for (double& v : p)
        sum += (v = std::exp(v - mx));
    std::vector<int> idx(p.size());
    std::iota(idx.begin(), idx.end(), 0);
    k = std::min<int>(k, int(p.size()));
    std::partial_sort(idx.begin(), idx.begin() + k, idx.end(),
                      [&](int a, int b) { return p[a] > p[b] || (p[a] == p[b] && a < b); });
    std::vector<std::pair<int, double>> out;
    for (int i = 0; i < k; ++i)
        out.emplace_back(idx[i], p[idx[i]] / sum);
    return out;
}

QStringList modelOverlayNames() {
    return {QObject::tr("Input"),
            QObject::tr("Sources"),
            QObject::tr("Saliency"),
            QObject::tr("Class-token attention"),
            QObject::tr("Attention rollout"),
            QObject::tr("Attention of the clicked token")};
}

std::vector<double> overlayValues(ModelOverlay o, const qmpp::ForwardTrace& tr,
                                  const qmpp::Rollout& ro, const qmpp::VitConfig& c, int block,
                                  int patch, int head) {
    if (block < 0 || block >= int(tr.blocks.size())) return {};
    const qmpp::BlockTrace& b = tr.blocks[std::size_t(block)];
    switch (o) {
    case ModelOverlay::Input:
    case ModelOverlay::Sources:
        return {};
    case ModelOverlay::Saliency:
        return qmpp::toPatches(b, qmpp::blockSaliency(b));
    case ModelOverlay::ClassAttention:
        return qmpp::toPatches(b, qmpp::tokenAttention(b, c.heads, 0));
    case ModelOverlay::Rollout:
        return std::size_t(block) < ro.patches.size() ? ro.patches[std::size_t(block)]
                                                      : std::vector<double>{};
    case ModelOverlay::HeadAttention: {
        const int row =
            patch >= 0 && std::size_t(patch) < b.owner.size() ? b.owner[std::size_t(patch)] : 0;
        if (row < 0) return {};
        return qmpp::toPatches(b, qmpp::tokenAttention(b, c.heads, row, head));
    }
    }
    return {};
}

} // namespace studio
