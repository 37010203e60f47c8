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

namespace studio {

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

  protected:
    void changeEvent(QEvent* e) override;

  private:
    void showRunTimings();
    void showBenchTimings();
    void restyle();

    QTabWidget* m_tabs;
    QCustomPlot *m_timings, *m_saliency, *m_sizes, *m_entropy;
    QComboBox *m_source, *m_benchN;
    QLabel* m_timingNote;
    QTableView* m_table;
    MetricsModel* m_model;
    std::shared_ptr<const RunOutput> m_out;
    nlohmann::json m_bench;
    int m_barCount = 0, m_variantCount = 0;
};

} // namespace studio
