// The Model page's labelled set view: every chosen method over a range of r (or one-shot
// budgets) on the set, as a job with progress and Cancel (lane "modelsweep"). Curves of
// accuracy, agreement with the unmerged model or KL against FLOPs or measured time, each with a
// band spanning every seed's 95 % interval; a Pareto view of agreement against images/s; a
// table. Clicking a point opens that setting; clicking a misclassified image opens it.
#pragma once

#include "jobs.h"

#include "qmpp/evaluate.h"

#include <QWidget>

#include <memory>

class QComboBox;
class QCustomPlot;
class QLabel;
class QLineEdit;
class QListWidget;
class QProgressBar;
class QPushButton;
class QSpinBox;
class QTableWidget;
class QCheckBox;

namespace studio {

class ModelSweepPanel : public QWidget {
    Q_OBJECT
  public:
    explicit ModelSweepPanel(JobOwner* jobs, QWidget* parent = nullptr);

    void setSource(std::shared_ptr<const qmpp::VitModel> model,
                   std::shared_ptr<const qmpp::EvalItems> set, const QString& setName);
    // The other parameters (tau, epsilon, Gumbel scale, seed, the budget's block).
    void setBase(const qmpp::HookParams& hp) { m_base = hp; }

    // The controls, for scripts and tests: methods by name, settings "2,4,8" (r per block, or
    // budgets in (0, 1] when `budget`), seeds per random method.
    void setMethods(const QStringList& methods);
    void setSettings(const QString& list, bool budget);
    void setSeeds(int seeds);

    // Starts the sweep (a newer one supersedes it); its id, or 0 with a message.
    quint64 run(QString* error = nullptr);
    void cancel();
    bool running() const { return m_running != 0; }

    struct Point {
        QString method;
        double setting = 0;
        qmpp::HookParams hp;
        qmpp::EvalRun run;
    };
    const std::vector<Point>& points() const { return m_points; }
    // The point whose misclassified images are listed.
    void selectPoint(int index);
    int selectedPoint() const { return m_selected; }
    // Items the point's merged model (seed 0) gets wrong.
    std::vector<int> misclassified(int point) const;

    QCustomPlot* curvePlot() const { return m_curve; }
    QCustomPlot* paretoPlot() const { return m_pareto; }
    QTableWidget* table() const { return m_table; }
    QListWidget* misclassifiedList() const { return m_wrong; }
    QProgressBar* progressBar() const { return m_progress; }
    QPushButton* runButton() const { return m_runButton; }
    QPushButton* cancelButton() const { return m_cancelButton; }
    QComboBox* measureBox() const { return m_measure; }
    QComboBox* axisBox() const { return m_axis; }

  signals:
    void openSetting(const qmpp::HookParams& hp);
    void openItem(int index, const qmpp::HookParams& hp);

  private:
    void plotCurves();
    void plotPareto();
    void fillTable();
    void onPlotClick(QCustomPlot* plot, int graphIndex, int dataIndex);

    JobOwner* m_jobs;
    std::shared_ptr<const qmpp::VitModel> m_model;
    std::shared_ptr<const qmpp::EvalItems> m_set;
    qmpp::HookParams m_base;
    std::vector<Point> m_points;
    int m_selected = -1;
    quint64 m_running = 0;
    // per plotted graph: the point of each data index
    std::map<std::pair<QCustomPlot*, int>, std::vector<int>> m_graphPoints;

    QLabel* m_setLabel;
    std::vector<QCheckBox*> m_methodBoxes;
    QComboBox *m_kind, *m_measure, *m_axis;
    QLineEdit* m_settings;
    QSpinBox* m_seeds;
    QPushButton *m_runButton, *m_cancelButton;
    QProgressBar* m_progress;
    QLabel* m_status;
    QCustomPlot *m_curve, *m_pareto;
    QTableWidget* m_table;
    QListWidget* m_wrong;
};

} // namespace studio
