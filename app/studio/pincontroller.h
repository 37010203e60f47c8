// A/B snapshots: pin the current result (A), then see what each later result (B) of the same
// input changed: which tokens changed group (a canvas overlay) and the metric deltas.
#pragma once

#include "runner.h"

#include <QObject>
#include <QString>

#include <memory>
#include <vector>

class QLabel;

namespace studio {

class ImageCanvas;

class PinController : public QObject {
    Q_OBJECT
  public:
    PinController(ImageCanvas* canvas, QLabel* status, QObject* parent = nullptr);

    // Pins `out`, a result of `input`; later results of the same input are compared with it.
    void pin(const StudioInput& input, std::shared_ptr<const RunOutput> out);
    void clear();
    bool pinned() const { return bool(m_pin); }
    // Compares a new result of `input` with the pin (nothing when another input is open).
    void onResult(const StudioInput& input, const std::shared_ptr<const RunOutput>& out);

    // The last comparison: 1 − Jaccard of each token's group, the share of tokens whose group
    // changed, and the text shown in the status bar.
    const std::vector<float>& change() const { return m_change; }
    double changedShare() const { return m_share; }
    QString text() const { return m_text; }
    std::shared_ptr<const RunOutput> pinnedOutput() const { return m_pin; }

  signals:
    void pinChanged(bool pinned);

  private:
    ImageCanvas* m_canvas;
    QLabel* m_status;
    std::shared_ptr<const qmpp::LoadedInput> m_input;
    std::shared_ptr<const RunOutput> m_pin;
    std::vector<float> m_change;
    double m_share = 0;
    QString m_text;
};

} // namespace studio
