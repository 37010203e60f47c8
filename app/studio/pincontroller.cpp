#include "pincontroller.h"

#include "imagecanvas.h"
#include "qmpp/views.h"

#include <QLabel>

namespace studio {

namespace {

// "name a → b (±d)" for one metric
QString delta(const char* name, double a, double b) {
    return QStringLiteral("%1 %2 → %3 (%4%5)")
        .arg(QLatin1String(name))
        .arg(a, 0, 'g', 4)
        .arg(b, 0, 'g', 4)
        .arg(b >= a ? QStringLiteral("+") : QString())
        .arg(b - a, 0, 'g', 3);
}

} // namespace

PinController::PinController(ImageCanvas* canvas, QLabel* status, QObject* parent)
    : QObject(parent), m_canvas(canvas), m_status(status) {
    m_status->setVisible(false);
}

void PinController::pin(const StudioInput& input, std::shared_ptr<const RunOutput> out) {
    if (!out || !input.loaded || input.isVideo()) return;
    m_input = input.loaded;
    m_pin = std::move(out);
    onResult(input, m_pin);
    emit pinChanged(true);
}

void PinController::clear() {
    const bool was = pinned();
    m_pin.reset();
    m_input.reset();
    m_change.clear();
    m_share = 0;
    m_text.clear();
    m_canvas->setChanged({});
    m_status->clear();
    m_status->setVisible(false);
    if (was) emit pinChanged(false);
}

void PinController::onResult(const StudioInput& input,
                             const std::shared_ptr<const RunOutput>& out) {
    if (!m_pin || !out) return;
    if (input.loaded != m_input) { // another input: the pin does not apply
        clear();
        return;
    }
    const auto& a = m_pin->result;
    const auto& b = out->result;
    m_change = qmpp::groupChange(a.labels, b.labels);
    std::size_t changed = 0;
    for (float c : m_change)
        changed += c > 0;
    m_share = m_change.empty() ? 0.0 : double(changed) / double(m_change.size());
    // the overlay: changed tokens in red, as strong as the change
    const Grid g = gridOf(input);
    QImage img(g.cols, g.rows, QImage::Format_ARGB32);
    img.fill(Qt::transparent);
    for (int y = 0; y < g.rows; ++y)
        for (int x = 0; x < g.cols; ++x) {
            const std::size_t i = std::size_t(y) * g.cols + x;
            if (i < m_change.size() && m_change[i] > 0)
                img.setPixel(x, y, qRgba(230, 40, 30, int(80 + 175 * m_change[i])));
        }
    m_canvas->setChanged(img);
    const auto& ma = a.metrics;
    const auto& mb = b.metrics;
    m_text = tr("vs pin: %1 % changed group · K %2 → %3 · %4 · %5 · %6")
                 .arg(100.0 * m_share, 0, 'f', 1)
                 .arg(a.k)
                 .arg(b.k)
                 .arg(delta("recon. error", ma.reconstructionError, mb.reconstructionError),
                      delta("mean cos", ma.meanCosine, mb.meanCosine),
                      delta("norm mass", ma.normMassRetention, mb.normMassRetention));
    m_status->setText(m_text);
    m_status->setToolTip(
        tr("Pinned (A): %1, τ = %2, seed %3. Metrics: reconstruction_error, mean_cosine, "
           "norm_mass_retention, pinned → now. Red tokens on the canvas (overlay \"Changed group "
           "since the pin\") belong to a group whose members changed; the stronger, the fewer they "
           "share (1 − Jaccard).")
            .arg(QString::fromStdString(a.method))
            .arg(m_pin->params.temperature)
            .arg(m_pin->params.seed));
    m_status->setVisible(true);
}

} // namespace studio
