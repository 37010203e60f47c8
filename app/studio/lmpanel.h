// The Tokens page's language model view (SPEC "Model in the loop", the AR claim): the bundled
// language model reads the open text (or the bundled Psalm 23) in windows; in each, the first T
// words are compressed to K groups at a block, and every following word's next-word loss is
// compared with the unmerged run — what `qmpp eval` on the language model measures. The strip
// shows the prefix's groups and each following word coloured by its change in loss; a budget
// sweep per method (QuickMerge++, random pruning) plots the change in cross-entropy against K/T.
#pragma once

#include "jobs.h"
#include "tokenstrip.h"

#include "qmpp/lm.h"

#include <QWidget>

#include <memory>

class QComboBox;
class QCustomPlot;
class QLabel;
class QPushButton;
class QSpinBox;

namespace studio {

class LmPanel : public QWidget {
    Q_OBJECT
  public:
    explicit LmPanel(JobOwner* jobs, QWidget* parent = nullptr);

    // The bundled model (resources/models/kjv-lm.safetensors, found as ModelPage finds models).
    bool openModel(const QString& path, QString* error = nullptr);
    bool hasModel() const { return bool(m_model); }
    // The words measured; `source` names them (a file). Empty: the bundled psalm23.txt.
    void setWords(const QStringList& words, const QString& source);
    QStringList words() const { return m_words; }

    // Settings (the CLI's --window --prefix --groups --at-block --method, and seeds 0..n-1).
    void setMerge(qmpp::i64 window, qmpp::i64 prefix, qmpp::i64 groups, qmpp::i64 block,
                  qmpp::ModelMethod method, int seeds);
    qmpp::PrefixMerge merge() const;
    qmpp::i64 window() const;

    // Measures at the settings (lane "lm"); the budget sweep over K/T per method ("lmsweep").
    // Their job ids, or 0 with a message.
    quint64 measure(QString* error = nullptr);
    quint64 sweep(QString* error = nullptr);

    const qmpp::LmEvalRun* result() const { return m_run.get(); }
    // Per word of the text: merged minus unmerged next-word loss, mean over seeds (NaN: a word
    // no loss predicts: the prefixes and each window's first word).
    const std::vector<double>& lossChange() const { return m_change; }
    struct SweepPoint {
        QString method;
        qmpp::i64 groups = 0;
        double budget = 0, change = 0, lo = 0, hi = 0; // K/T; mean and range over seeds
    };
    const std::vector<SweepPoint>& sweepPoints() const { return m_points; }

    TokenStrip* strip() const { return m_strip; }
    QCustomPlot* changePlot() const { return m_changePlot; }
    QCustomPlot* sweepPlot() const { return m_sweepPlot; }
    QLabel* summary() const { return m_summary; }

  private:
    bool ensureModel(QString* error);
    std::string text() const; // the words, or the bundled text
    std::vector<qmpp::i64> ids() const;
    void showRun();
    void plotSweep();

    JobOwner* m_jobs;
    std::shared_ptr<const qmpp::LmModel> m_model;
    QString m_modelPath;
    QStringList m_words;
    QString m_source;
    std::shared_ptr<const qmpp::LmEvalRun> m_run;
    std::vector<double> m_change;
    std::vector<SweepPoint> m_points;

    QLabel *m_modelLabel, *m_summary;
    QSpinBox *m_window, *m_prefix, *m_groups, *m_block, *m_seeds;
    QComboBox* m_method;
    QPushButton *m_measureButton, *m_sweepButton;
    TokenStrip* m_strip;
    QCustomPlot *m_changePlot, *m_sweepPlot;
};

} // namespace studio
