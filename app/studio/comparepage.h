// The Compare page: the open input merged by two to four methods side by side (canvases with
// zoom and pan synchronized), a table of their metrics, AR loss and time, and a budget sweep
// (each metric against budget, a curve per method) with progress and cancel.
#pragma once

#include "imagecanvas.h"
#include "jobs.h"
#include "runner.h"

#include "qmpp/evaluate.h"
#include "qmpp/sweep.h"

#include <QWidget>

#include <atomic>
#include <vector>

class QCheckBox;
class QComboBox;
class QCustomPlot;
class QLabel;
class QTableWidget;

namespace studio {

class ComparePage : public QWidget {
    Q_OBJECT
  public:
    static constexpr int kSlots = 4;
    ComparePage(JobOwner* jobs, QWidget* parent = nullptr);

    void setInput(const StudioInput& in);
    // The methods compared (two to four; the boxes left at "none" are skipped).
    void setMethods(const std::vector<qmpp::Method>& methods);
    std::vector<qmpp::Method> methods() const;
    // Merges the input under each method with `base`'s other parameters, as a job on the
    // "compare" lane (a newer one supersedes it); the results show when it finishes. Returns
    // the job's id, or 0 with a message when there is nothing to compare.
    quint64 compare(const qmpp::MergeParams& base, QString* error = nullptr);
    // The budget sweep on the "sweep" lane: `budgets` (default 5 %, 10 %, 20 %, ..., 100 %)
    // for each method. Cancelled, the previous curves stay.
    quint64 sweep(const qmpp::MergeParams& base, std::vector<double> budgets = {},
                  QString* error = nullptr);
    // The model column: after each comparison, every method also runs inside `model` on the
    // set's first `limit` images, at the comparison's budget (K / N) merged once at block
    // `atBlock` (lane "comparemodel"); the table gains its agreement and KL. Null: no column.
    void setModel(std::shared_ptr<const qmpp::VitModel> model,
                  std::shared_ptr<const qmpp::EvalItems> set, qmpp::i64 atBlock);
    // How many of the set's images the model column uses (default 200; from the next setModel).
    void setModelLimit(qmpp::i64 limit) { m_modelLimit = std::max<qmpp::i64>(1, limit); }
    struct ModelCell {
        qmpp::HookParams hp;
        qmpp::EvalMeasures measures;
        qmpp::i64 items = 0;
    };
    // Per output (same order), once measured.
    const std::vector<ModelCell>& modelCells() const { return m_modelCells; }
    quint64 modelJob() const { return m_modelJob; }

    // The parameters changed: on screen the comparison refreshes; off screen it is marked stale.
    void paramsChanged(const qmpp::MergeParams& now);
    bool stale() const;
    QLabel* staleBanner() const { return m_stale; }

    const std::vector<std::shared_ptr<const RunOutput>>& outputs() const { return m_outputs; }
    const std::vector<qmpp::SweepRow>& sweepRows() const { return m_rows; }
    ImageCanvas* canvas(int slot) const { return m_canvas[slot]; }
    QTableWidget* metricsTable() const { return m_table; }
    QCustomPlot* sweepPlot() const { return m_plot; }
    QComboBox* metricSelector() const { return m_metric; }
    QComboBox* methodBox(int slot) const { return m_method[slot]; }

  signals:
    // The page wants the current parameters (the main window answers with compare/sweep).
    void compareRequested();
    void sweepRequested();

  protected:
    void changeEvent(QEvent* e) override;

  private:
    void showOutputs(const std::vector<std::shared_ptr<const RunOutput>>& outs,
                     const qmpp::MergeParams& base);
    void setStale(bool stale, const QString& why = {});
    void showTable();
    void plotSweep();

    JobOwner* m_jobs;
    StudioInput m_in;
    qmpp::MergeParams m_compared; // what the outputs show
    QLabel* m_stale;
    QComboBox* m_method[kSlots];
    ImageCanvas* m_canvas[kSlots];
    QLabel* m_title[kSlots];
    QTableWidget* m_table;
    QCustomPlot* m_plot;
    QComboBox* m_metric;
    std::vector<std::shared_ptr<const RunOutput>> m_outputs;
    std::vector<qmpp::SweepRow> m_rows;
    std::shared_ptr<const qmpp::VitModel> m_model;
    std::shared_ptr<const qmpp::EvalItems> m_modelSet;
    qmpp::i64 m_atBlock = 0, m_modelLimit = 200;
    std::vector<ModelCell> m_modelCells;
    quint64 m_modelJob = 0;
    void measureInModel();
};

} // namespace studio
