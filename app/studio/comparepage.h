// The Compare page: the open input merged by two to four methods side by side (canvases with
// zoom and pan synchronized), a table of their metrics, AR loss and time, and a budget sweep
// (each metric against budget, a curve per method) with progress and cancel.
#pragma once

#include "imagecanvas.h"
#include "runner.h"

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
    explicit ComparePage(QWidget* parent = nullptr);

    void setInput(const StudioInput& in);
    // The methods compared (two to four; the boxes left at "none" are skipped).
    void setMethods(const std::vector<qmpp::Method>& methods);
    std::vector<qmpp::Method> methods() const;
    // Merges the input under each method with `base`'s other parameters (blocking the caller
    // with a progress dialog; the results are shown). False with a message on failure.
    bool compare(const qmpp::MergeParams& base, QString* error = nullptr);
    // The budget sweep: `budgets` (default 5 %, 10 %, 20 %, ..., 100 %) for each method.
    // cancelAfter >= 0 cancels once that many points are done (tests). False when cancelled
    // (the previous curves stay) or failed.
    bool sweep(const qmpp::MergeParams& base, std::vector<double> budgets = {},
               int cancelAfter = -1, QString* error = nullptr);

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
    void showTable();
    void plotSweep();

    StudioInput m_in;
    QComboBox* m_method[kSlots];
    ImageCanvas* m_canvas[kSlots];
    QLabel* m_title[kSlots];
    QTableWidget* m_table;
    QCustomPlot* m_plot;
    QComboBox* m_metric;
    std::vector<std::shared_ptr<const RunOutput>> m_outputs;
    std::vector<qmpp::SweepRow> m_rows;
};

} // namespace studio
