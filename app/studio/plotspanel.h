// The bottom dock: per-stage timings (last run, or a `qmpp bench --json` file measured
// elsewhere), saliency and group-size histograms, per-layer entropy, and the metrics table.
#pragma once

#include "metricsmodel.h"
#include "runner.h"

#include <QWidget>
#include <nlohmann/json.hpp>

class QCustomPlot;
class QComboBox;
class QLabel;
class QTabWidget;
class QTableView;
class QCPBars;

namespace studio {

class TokenSelection;

class PlotsPanel : public QWidget {
    Q_OBJECT
  public:
    explicit PlotsPanel(QWidget* parent = nullptr);
    void setOutput(std::shared_ptr<const RunOutput> out);
    // A `qmpp bench --json` document; throws std::runtime_error on a malformed one.
    void loadBench(const QString& path);
    // The same from memory (e.g. the studio's own profile run), labelled `label`.
    void setBench(const nlohmann::json& bench, const QString& label);
    MetricsModel* metricsModel() const { return m_model; }
    QTabWidget* tabs() const { return m_tabs; }
    QCustomPlot* timingsPlot() const { return m_timings; }
    int timingBars() const { return m_barCount; }
    int benchVariants() const { return m_variantCount; }
    QCustomPlot* saliencyPlot() const { return m_saliency; }
    QCustomPlot* sizesPlot() const { return m_sizes; }
    // The linked selection: a click on a histogram's bar selects its tokens; the histograms
    // draw the selected tokens' share of each bar over it.
    void setSelection(TokenSelection* selection);
    void selectSaliencyBin(int bin);      // 20 bins over [0, 1]
    void selectGroupSize(long long size); // every group of this many tokens
    // The overlays' heights per bar (selected tokens per saliency bin; selected groups per size).
    QVector<double> selectedSaliencyCounts() const;
    QVector<double> selectedSizeCounts() const;

  protected:
    void changeEvent(QEvent* e) override;

  private:
    void showRunTimings();
    void showBenchTimings();
    void restyle();
    void refreshSelection();

    QTabWidget* m_tabs;
    QCustomPlot *m_timings, *m_saliency, *m_sizes, *m_entropy;
    QComboBox *m_source, *m_benchN;
    QLabel* m_timingNote;
    QTableView* m_table;
    MetricsModel* m_model;
    std::shared_ptr<const RunOutput> m_out;
    TokenSelection* m_selection = nullptr;
    QCPBars *m_salSel = nullptr, *m_sizeSel = nullptr;
    nlohmann::json m_bench;
    int m_barCount = 0, m_variantCount = 0;
};

} // namespace studio
